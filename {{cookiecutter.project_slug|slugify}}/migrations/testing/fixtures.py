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
import pickle
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import URL, Connection, Engine, event, make_url
from sqlalchemy.exc import OperationalError

from migrations.failures import describe
from migrations.settings import is_async, make_async_engine, make_engine, parse_url, run_on_connection, server_url
from migrations.testing.connections import connected
from migrations.testing.mariadb_copies import Original

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def project_config(folder: Path = ALEMBIC_INI.parent, **kwargs: Any) -> Config:
    """The Alembic Config of the project in ``folder`` (this one, or a copy of it): its
    alembic.ini, and ``[tool.alembic]`` in the pyproject.toml beside it, as the ``alembic``
    command reads them there."""
    return Config(folder / "alembic.ini", toml_file=folder / "pyproject.toml", **kwargs)


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
    drops them (a MariaDB copy as good as new goes back to its template instead)."""

    def __init__(self, server: URL, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.created: list[URL] = []
        self.lent: list[tuple[HeadTemplate, URL]] = []

    def new(self) -> URL:
        url = self._create()
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
            url = self._create(template.url.database)
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
        url = self.server.set(database=f"test_{uuid.uuid4().hex[:12]}")

        def create(connection: Connection) -> None:
            quote = connection.dialect.identifier_preparer.quote
            clause = f" TEMPLATE {quote(template)}" if template else ""
            connection.exec_driver_sql(f"CREATE DATABASE {quote(url.database)}{clause}")

        connected(server_url(url), create, isolation_level="AUTOCOMMIT")
        return url

    def drop_all(self) -> None:
        """Drop the databases made here, and only those."""
        self.created += [url for template, url in self.lent if not template.take_back(url)]
        self.lent.clear()
        if not self.created:
            return

        def drop(url: URL) -> None:
            def drop_on(connection: Connection) -> None:
                force = " WITH (FORCE)" if connection.dialect.name == "postgresql" else ""
                name = connection.dialect.identifier_preparer.quote(url.database)
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")

            connected(server_url(self.server), drop_on, isolation_level="AUTOCOMMIT")

        # All at once, each on a connection of its own (through the URL's driver, async too):
        # PostgreSQL's DROP DATABASE waits for a checkpoint, and those waits overlap.
        with ThreadPoolExecutor(max_workers=min(len(self.created), 8)) as threads:
            list(threads.map(drop, self.created))
        self.created.clear()


TEMPLATE_URL = "HEAD_TEMPLATE_URL"  # to HeadTemplate.build's process (not in argv: a password)
# What the template's build ran that changed nothing: left out of the replay.
READ_ONLY = re.compile(r"\s*(SELECT|SHOW|DESCRIBE|DESC|EXPLAIN)\b", re.IGNORECASE)


@dataclass
class Statement:
    """One statement as SQLAlchemy handed it to the driver, to run again the same way."""

    sql: str
    parameters: Any
    many: bool
    no_parameters: bool


class HeadTemplate:
    """The database create_db.py built at head, once, for ``Databases.copy_of`` to copy; no
    test ever gets it. On MariaDB it also keeps the statements that built it, to replay.

    create_db.py runs in a process of its own, as users run it: revision modules that this
    process imported may have attached things to the models' MetaData."""

    def __init__(self, server: URL, folder: Path) -> None:
        self.databases = Databases(server, folder)
        self.url = self.databases.new()
        self.statements: list[Statement] = []
        self.original: Original | None = None  # MariaDB: what a copy given back must be again
        self.spares: list[URL] = []  # MariaDB: copies given back as good as new

    @classmethod
    def build(cls, server: URL, folder: Path) -> HeadTemplate:
        template = cls(server, folder)
        recorded = folder / f"{uuid.uuid4().hex[:12]}.statements"
        env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
        env[TEMPLATE_URL] = template.url.render_as_string(hide_password=False)
        run = f"from migrations.testing.fixtures import build_and_record; build_and_record({str(recorded)!r})"
        result = subprocess.run(
            [sys.executable, "-c", run], cwd=ALEMBIC_INI.parent, env=env, capture_output=True, text=True
        )
        if result.returncode != 0:
            template.drop()
            said = [line for line in result.stderr.strip().splitlines() if line.strip()] or ["(nothing said)"]
            # its one line (a CommandError's), not the traceback of the process that built it
            pytest.fail(f"create_db.py failed to build the tests' database at head: {said[-1].strip()}", pytrace=False)
        template.statements = pickle.loads(recorded.read_bytes())
        recorded.unlink()
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


def build_and_record(recorded: str) -> None:
    """HeadTemplate.build's process: create_db() builds the database of ``$HEAD_TEMPLATE_URL``;
    on MariaDB what every Engine ran on it, reads left out, is pickled to ``recorded``."""
    from create_db import create_db  # beside alembic.ini, where this process runs

    url = make_url(os.environ[TEMPLATE_URL])
    statements: list[Statement] = []

    def record(connection, _cursor, sql, parameters, context, many) -> None:
        if connection.engine.url.database == url.database and not READ_ONLY.match(sql):
            no_parameters = not parameters and context is not None and context.no_parameters
            statements.append(Statement(sql, parameters, many, no_parameters))

    if url.get_backend_name() not in ("sqlite", "postgresql"):  # those are copied whole
        event.listen(Engine, "before_cursor_execute", record)
    create_db(alembic_config_for(url))
    Path(recorded).write_bytes(pickle.dumps(statements))


def alembic_config_for(url: URL) -> Config:
    """The project's alembic.ini, pointed at ``url``, leaving pytest's logging alone."""
    config = project_config()
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


@pytest.fixture(scope="session")
def server() -> URL:
    """The database server under test (a SQLite URL means: files in tmp_path)."""
    try:
        url = test_server()
        reason = unreachable(url)
    except CommandError as error:  # one line, nothing of the URL in it (an async driver not installed...)
        pytest.fail(str(error), pytrace=False)
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture
def dialect(server: URL) -> str:
    return server.get_backend_name()


@pytest.fixture
def new_database(server: URL, tmp_path: Path) -> Iterator[Callable[[], URL]]:
    """Call it for another empty database; all of them are dropped after the test."""
    databases = Databases(server, tmp_path)
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
def head_template_build(server: URL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[HeadTemplate]]:
    """create_db.py building the session's database at head, in a process of its own, started
    by the first test that asks and running in the background meanwhile (the migration suite
    starts it before its stairway, and compares it with upgrade head; database_at_head copies
    it: one build per session)."""
    folder = tmp_path_factory.mktemp("head-template")
    with ThreadPoolExecutor(max_workers=1) as thread:
        build = thread.submit(HeadTemplate.build, server, folder)
        try:
            yield build
        finally:
            if build.exception() is None:
                build.result().drop()


@pytest.fixture(scope="session")
def head_template(head_template_build: Future[HeadTemplate]) -> HeadTemplate:
    """The database create_db.py builds at head, once per session, for database_at_head to copy."""
    return head_template_build.result()


@pytest.fixture
def new_database_at_head(head_template: HeadTemplate, tmp_path: Path) -> Iterator[Callable[[], URL]]:
    """Call it for another database at head; all of them are dropped after the test."""
    databases = Databases(head_template.databases.server, tmp_path)
    yield lambda: databases.copy_of(head_template)
    databases.drop_all()


@pytest.fixture
def database_at_head(new_database_at_head: Callable[[], URL]) -> URL:
    """A database of this test's own, at head: a copy of the one create_db.py built for the session."""
    return new_database_at_head()
