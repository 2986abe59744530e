"""pytest fixtures for tests that need a database: a fresh one for every test, empty or at head.

Import the ones a test folder uses in its ``conftest.py`` (tests/conftest.py does)::

    from migrations.testing.fixtures import alembic_config, database_at_head, database_url, ...

- ``database_url`` (with ``engine`` and ``alembic_config`` on it): an empty database;
  ``new_database()`` makes more.
- ``database_at_head``: a database already at head, as ``create_db.py`` builds it, for a
  fraction of a build's cost: create_db.py builds one database per test session, and each
  test gets its own copy (PostgreSQL: ``CREATE DATABASE ... TEMPLATE``; SQLite: a copy of
  the file; MariaDB: the statements create_db.py ran, replayed, or a copy an earlier test
  left as good as new, emptied again: see mariadb_copies.py). ``new_database_at_head()``
  makes more.

The server is ``TEST_DATABASE_URL`` if set, else ``sqlalchemy.url`` in alembic.ini
(``DATABASE_URL`` is never used here, so tests cannot touch a real database). SQLite gets
a file in the test's tmp_path; PostgreSQL and MariaDB get a uniquely named database,
created for the test and dropped after it. A server that cannot be reached skips the
tests that need it, with the reason, except under ``CI=true``: there it fails.

An async URL (``postgresql+asyncpg://...``, ``sqlite+aiosqlite:///...``) is used through its
async driver (see connections.py): the databases are created and dropped with it, and
``engine`` is an AsyncEngine.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext, suppress
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import URL, Connection, Engine, make_url
from sqlalchemy.exc import OperationalError

from migrations.failures import describe
from migrations.settings import is_async, make_async_engine, make_engine, parse_url, run_on_connection, server_url
from migrations.testing.ahead import Ahead
from migrations.testing.connections import connected
from migrations.testing.head_build import (  # noqa: F401  the fixtures' API too
    ALEMBIC_INI,
    Statement,
    alembic_config_for,
    build_at_head,
    import_for_build,
    project_config,
)
from migrations.testing.mariadb_copies import Original

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def test_server() -> URL:
    """The server under test: ``TEST_DATABASE_URL``, else alembic.ini's ``sqlalchemy.url``."""
    if os.environ.get("TEST_DATABASE_URL"):
        return parse_url(os.environ["TEST_DATABASE_URL"], "TEST_DATABASE_URL")
    return parse_url(Config(ALEMBIC_INI).get_main_option("sqlalchemy.url"), "sqlalchemy.url in alembic.ini")


test_server.__test__ = False  # a helper, not a test


def unreachable(url: URL) -> str | None:
    """Why the server of ``url`` cannot be used, or None when it can (SQLite always can)."""
    if url.get_backend_name() == "sqlite":
        return None
    try:
        run_on_connection(server_url(url), lambda _connection: None)  # an async URL: its async driver
    except OperationalError as error:
        return (
            f"{url.get_backend_name()} server {url.render_as_string(hide_password=True)} "
            f"is not reachable ({describe(error)}); set TEST_DATABASE_URL to one that is"
        )
    return None


class Databases:
    """Databases on the server under test, each uniquely named (SQLite: a file in ``folder``):
    empty ones made by ``new()``, copies of a HeadTemplate by ``copy_of()``; ``drop_all()``
    drops them (a MariaDB copy as good as new goes back to its template instead). With
    ``ahead`` (PostgreSQL), the ones made ahead are taken first, and drops are left to it."""

    def __init__(self, server: URL, folder: Path, ahead: Ahead | None = None) -> None:
        self.server = server
        self.folder = folder
        self.ahead = ahead
        self.created: list[URL] = []
        self.lent: list[tuple[HeadTemplate, URL]] = []

    def new(self, counted: bool = True) -> URL:
        """An empty database. ``counted=False``: one that ``databases_ahead`` did not count
        (a second walk...); Ahead then makes one more, for the tests it counted."""
        url = (self.ahead.empty(counted) if self.ahead else None) or self._create()
        if self.server.get_backend_name() != "sqlite":  # SQLite: a file in folder, gone with it
            self.created.append(url)
        return url

    def copy_of(self, template: HeadTemplate) -> URL:
        """A new database with what ``template`` has: PostgreSQL clones it, SQLite copies its
        file, MariaDB takes one given back as good as new, else replays the template's build."""
        backend = self.server.get_backend_name()
        if backend == "sqlite":
            url = self._create()
            shutil.copyfile(template.url.database, url.database)
        elif backend == "postgresql":
            made_ahead = self.ahead.copy(template.url.database) if self.ahead else None
            url = made_ahead or self._create(template.url.database)
            self.created.append(url)
        else:
            spare = template.spares.pop() if template.spares else None
            url = spare or self._create()
            self.lent.append((template, url))
            if spare is None:
                template.replay(url)
        return url

    def _create(self, template: str | None = None) -> URL:
        """A uniquely named database (PostgreSQL: a clone of ``template``); SQLite: a file name."""
        if self.server.get_backend_name() == "sqlite":  # the server's driver: sqlite, or aiosqlite
            path = self.folder / f"{uuid.uuid4().hex[:12]}.sqlite"
            return make_url(f"sqlite:///{path}").set(drivername=self.server.drivername)
        return create_database(self.server, template)

    def drop_all(self) -> None:
        """Drop the databases made here, and only those."""
        self.created += [url for template, url in self.lent if not template.take_back(url)]
        self.lent.clear()
        created, self.created = self.created, []
        if self.ahead is not None:
            self.ahead.drop(created)
        elif created:  # all at once, each on a connection of its own: PostgreSQL's drops wait for a checkpoint
            with ThreadPoolExecutor(max_workers=min(len(created), 8)) as threads:
                list(threads.map(drop_database, created))


def create_database(server: URL, template: str | None = None) -> URL:
    """A new, uniquely named database on ``server`` (PostgreSQL: a clone of ``template``)."""
    url = server.set(database=f"test_{uuid.uuid4().hex[:12]}")

    def create(connection: Connection) -> None:
        quote = connection.dialect.identifier_preparer.quote
        clause = f" TEMPLATE {quote(template)}" if template else ""
        connection.exec_driver_sql(f"CREATE DATABASE {quote(url.database)}{clause}")

    connected(server_url(url), create, isolation_level="AUTOCOMMIT")
    return url


def drop_database(url: URL) -> None:
    """Drop the database of ``url`` (through its server, with the URL's driver, async too)."""

    def drop_on(connection: Connection) -> None:
        force = " WITH (FORCE)" if connection.dialect.name == "postgresql" else ""
        name = connection.dialect.identifier_preparer.quote(url.database)
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")

    connected(server_url(url), drop_on, isolation_level="AUTOCOMMIT")


class HeadTemplate:
    """The database create_db() built at head, once, for ``Databases.copy_of`` to copy; tests
    that only read it get it itself (``database_at_head_read_only``), and PostgreSQL makes no
    copy of it while they are connected. On MariaDB it also keeps the statements that built
    it, to replay.

    It is built in the test process before anything in it has imported a revision: a revision
    module may attach things to the models' MetaData when it is imported (see ``build_at_head``
    and the ``head_template_first`` fixture)."""

    def __init__(self, server: URL, folder: Path, ahead: Ahead | None = None) -> None:
        self.databases = Databases(server, folder, ahead)
        self.url = self.databases.new()
        self.statements: list[Statement] = []
        self.original: Original | None = None  # MariaDB: what a copy given back must be again
        self.spares: list[URL] = []  # MariaDB: copies given back as good as new

    @classmethod
    def build(cls, server: URL, folder: Path, ahead: Ahead | None = None) -> HeadTemplate:
        imported = import_for_build()  # on PostgreSQL while Ahead makes the database
        template = cls(server, folder, ahead)
        said = None
        try:
            if imported is not None:
                raise imported
            template.statements = build_at_head(template.url)
        except BaseException as error:  # one line, not a traceback through create_db.py
            template.drop()
            if not isinstance(error, Exception):  # Ctrl-C: after the drop, as it came
                raise
            said = str(error) if isinstance(error, CommandError) else f"{type(error).__name__}: {describe(error)}"
        if said is not None:  # outside the except: no chain of exceptions printed
            pytest.fail(f"create_db.py failed to build the tests' database at head: {said}", pytrace=False)
        if server.get_backend_name() not in ("sqlite", "postgresql"):
            template.original = Original(template.url)
        return template

    def replay(self, url: URL) -> None:
        """Run the recorded statements on the database of ``url``, as the driver got them."""
        connected(url, self._replay)

    def _replay(self, connection: Connection) -> None:
        dialect, driver = connection.dialect, connection.connection  # the driver's connection, pooled
        cursor = driver.cursor()
        for statement in self.statements:
            if statement.many:
                dialect.do_executemany(cursor, statement.sql, statement.parameters)
            elif statement.no_parameters:
                dialect.do_execute_no_params(cursor, statement.sql)
            else:
                dialect.do_execute(cursor, statement.sql, statement.parameters)
        driver.commit()

    def take_back(self, url: URL) -> bool:
        """MariaDB: keep a copy its test is done with for the next one, if it can be made as
        good as new (see mariadb_copies.py). False: the caller drops it."""
        if self.original is None or not self.original.restore(url):
            return False
        self.spares.append(url)
        return True

    def drop(self) -> None:
        """Drop it, and the copies given back to it."""
        self.databases.created.extend(self.spares)
        self.spares.clear()
        self.databases.drop_all()


@pytest.fixture(scope="session")
def server() -> URL:
    """The database server under test (a SQLite URL means: files in tmp_path)."""
    try:
        url = test_server()
        reason = unreachable(url)
    except CommandError as error:  # one line, nothing of the URL in it (an async driver not installed...)
        said = str(error)
    else:
        said = None
    if said is not None:  # outside the except: no chain of exceptions printed
        pytest.fail(said, pytrace=False)
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture
def dialect(server: URL) -> str:
    return server.get_backend_name()


@pytest.fixture(scope="session")
def databases_ahead(server: URL, request: pytest.FixtureRequest) -> Iterator[Ahead | None]:
    """On PostgreSQL, the session's databases made ahead and dropped behind (see ahead.py):
    an empty one for each test that asks for ``new_database`` (``database_url``...), for the
    first walk of each migration suite and environment (its ``databases``), and for the
    database at head; a copy for each test that asks for ``new_database_at_head``
    (``database_at_head``). A database asked for beyond that (a walk past a fault...) takes
    one made ahead, and one more is made in its place; or, when none is waiting, one is made
    then. Elsewhere None: made when asked for (a SQLite file, a MariaDB database:
    milliseconds)."""
    if server.get_backend_name() != "postgresql":
        yield None
        return
    items = request.session.items
    empties = sum("new_database" in item.fixturenames for item in items)
    empties += len({(item.path, environment(item)) for item in items if "databases" in item.fixturenames})
    empties += any("head_template" in item.fixturenames for item in items)  # the template itself
    copies = sum("new_database_at_head" in item.fixturenames for item in items)
    ahead = Ahead(partial(create_database, server), drop_database, empties, copies)
    yield ahead
    ahead.close()


def environment(item: pytest.Item) -> str | None:
    """The environment a test of tests/test_migrations.py runs for, when it runs for several."""
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("environment") if callspec else None


@pytest.fixture
def new_database(server: URL, tmp_path: Path, databases_ahead: Ahead | None) -> Iterator[Callable[[], URL]]:
    """Call it for another empty database; all of them are dropped after the test."""
    databases = Databases(server, tmp_path, databases_ahead)
    yield databases.new
    databases.drop_all()


@pytest.fixture
def database_url(new_database: Callable[[], URL]) -> URL:
    """An empty database for this test."""
    return new_database()


@pytest.fixture
def engine(database_url: URL) -> Iterator[Engine | AsyncEngine]:
    """An Engine on this test's empty database; on an async URL an AsyncEngine (no pool: any
    event loop may use it, e.g. pytest-asyncio's; sync code reaches it through
    ``migrations.settings.run_on_connection(engine, fn)``)."""
    if is_async(database_url):
        engine = make_async_engine(database_url)
        yield engine
        asyncio.run(engine.dispose())
        return
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def alembic_config(database_url: URL) -> Config:
    """The project's alembic.ini, pointed at this test's database."""
    return alembic_config_for(database_url)


@pytest.fixture(scope="session")
def head_template(
    server: URL, tmp_path_factory: pytest.TempPathFactory, databases_ahead: Ahead | None
) -> Iterator[HeadTemplate]:
    """The database create_db() builds at head, once per session, for database_at_head to
    copy (on PostgreSQL, copies are made of it in the background from then on)."""
    template = HeadTemplate.build(server, tmp_path_factory.mktemp("head-template"), databases_ahead)
    if databases_ahead is not None:
        databases_ahead.copies_of(template.url.database)
    yield template
    if databases_ahead is not None:
        databases_ahead.stop_copies(template.url.database)
    template.drop()


@pytest.fixture(scope="session", autouse=True)
def head_template_first(request: pytest.FixtureRequest) -> None:
    """Build the session's database at head at the session's first test, before any test or
    fixture imports a revision (one may attach things to the models' tables when imported:
    create_all() would build them too), when any collected test needs it. Should the build
    fail, only the tests that need it fail, each with its one line."""
    if any("head_template" in item.fixturenames for item in request.session.items):
        with suppress(Exception, pytest.fail.Exception, pytest.skip.Exception):  # kept for the tests that ask
            request.getfixturevalue("head_template")


@pytest.fixture
def new_database_at_head(
    head_template: HeadTemplate, tmp_path: Path, databases_ahead: Ahead | None
) -> Iterator[Callable[[], URL]]:
    """Call it for another database at head; all of them are dropped after the test."""
    databases = Databases(head_template.databases.server, tmp_path, databases_ahead)
    yield lambda: databases.copy_of(head_template)
    databases.drop_all()


@pytest.fixture
def database_at_head_read_only(head_template: HeadTemplate, databases_ahead: Ahead | None) -> Iterator[URL]:
    """The session's database at head itself, for a test that only reads it: no copy is
    made for it (on PostgreSQL, none is under way meanwhile: one cannot be made of a
    database anyone is connected to). A test that changes it changes every later copy."""
    with databases_ahead.holding(head_template.url.database) if databases_ahead else nullcontext():
        yield head_template.url


@pytest.fixture
def database_at_head(new_database_at_head: Callable[[], URL]) -> URL:
    """A database of this test's own, at head: a copy of the one create_db.py built for the session."""
    return new_database_at_head()
