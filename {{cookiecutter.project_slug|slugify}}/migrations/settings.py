"""Where the database and the target MetaData come from; shared by env.py and create_db.py.

- the URL: ``config.attributes["database_url"]`` (set by create_db.py --url, or by a
  program calling Alembic), else the ``DATABASE_URL`` environment variable, else
  ``sqlalchemy.url`` in alembic.ini;
- the MetaData: ``target_metadata = module:attribute`` in alembic.ini;
- the Engine: SQLAlchemy's, with SQLite made transactional (pysqlite would otherwise
  commit every DDL statement on its own).

Mistakes here are expected (a typo in a URL, a moved module), so they raise
``alembic.util.CommandError``: the ``alembic`` command prints one line, no traceback.
"""

from __future__ import annotations

import configparser
import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import reduce

from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import URL, Connection, Engine, MetaData, create_engine, event, make_url, pool
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from migrations.lock import gave_up


def database_url(config: Config) -> URL:
    """The database to migrate: the attribute, then ``$DATABASE_URL``, then alembic.ini."""
    given = config.attributes.get("database_url")
    if isinstance(given, URL):
        return given
    if given:
        raw, source = given, "the database URL given"
    elif os.environ.get("DATABASE_URL"):
        raw, source = os.environ["DATABASE_URL"], "DATABASE_URL"
    else:
        source = "sqlalchemy.url in alembic.ini"
        try:
            raw = config.get_main_option("sqlalchemy.url")
        except configparser.Error:  # a lone % (a quoted password): never echo the text
            raise CommandError(
                f"{source}: write each % as %% in alembic.ini, or set the URL in DATABASE_URL instead."
            ) from None
    if not raw:
        raise CommandError("No database URL: set DATABASE_URL or sqlalchemy.url in alembic.ini.")
    return parse_url(raw, source)


def parse_url(raw: str, source: str) -> URL:
    """``make_url(raw)``, or a CommandError that echoes nothing of ``raw`` (it may hold a
    password). A URL that parses but not as meant is refused too: an unquoted ``@`` in the
    password leaves the password's tail in the host or the database name, and a bad port
    echoes it."""
    try:
        url = make_url(raw)
        url.port  # noqa: B018  an out-of-range port raises here
    except (ArgumentError, ValueError, TypeError):
        url = None
    # Two @ (an unquoted @ in the password) can put part of the password in the host or the
    # database name, which are shown: refused, whatever the parser made of them.
    ambiguous = url is not None and url.get_backend_name() != "sqlite" and raw.count("@") > 1
    # SQLite takes a file path, never a user, password or host: such a URL is a mistake.
    ambiguous |= url is not None and url.get_backend_name() == "sqlite" and bool(url.username or url.host)
    if url is None or ambiguous or "@" in (url.host or "") or (url.port is not None and not 0 < url.port < 65536):
        raise CommandError(
            f"{source} is not a valid SQLAlchemy URL: expected e.g. "
            "postgresql+psycopg://user:password@host/dbname (quote special "
            "characters in the password with urllib.parse.quote(password, safe=''))."
        ) from None
    return url


def make_engine(url: URL | str) -> Engine:
    """An Engine for migrations: no pool, and real transactions on SQLite."""
    try:
        engine = create_engine(url, poolclass=pool.NullPool)
    except (ArgumentError, NoSuchModuleError) as error:
        safe = make_url(url).render_as_string(hide_password=True)
        first_line = str(error).strip().splitlines()[0]  # SQLite's lists the valid forms below
        raise CommandError(f"Cannot use database URL {safe}: {first_line}") from None
    except ImportError as error:  # the dialect is known, its driver (DBAPI) is not installed
        safe = make_url(url).render_as_string(hide_password=True)
        raise CommandError(
            f"Cannot use database URL {safe}: its driver is not installed ({error}); "
            "install the package that provides it"
        ) from None
    if engine.dialect.name == "sqlite":
        # SQLAlchemy's recipe for pysqlite: turn off the driver's own transaction handling
        # and emit BEGIN ourselves, so DDL is transactional and one commit means one fsync.
        # IMMEDIATE takes the write lock at once: concurrent migrations queue up.
        event.listen(engine, "connect", _no_driver_transactions)
        event.listen(engine, "begin", _begin_immediate)
    return engine


def _no_driver_transactions(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except OperationalError as error:
        if "database is locked" not in str(error.orig):
            raise
        # The write lock is SQLite's migration lock: it was not had within the busy timeout,
        # which migrations/lock.py sets to migration_lock_timeout.
        waited = connection.connection.driver_connection.execute("PRAGMA busy_timeout").fetchone()[0] / 1000
        raise gave_up(connection.engine.url, waited) from None


def transactional_sqlite(connection: Connection) -> bool:
    """True for a SQLite connection made by make_engine: its DDL is transactional."""
    return connection.dialect.name == "sqlite" and event.contains(connection.engine, "begin", _begin_immediate)


@contextmanager
def sqlite_legacy_rename(connection: Connection) -> Iterator[None]:
    """On SQLite: batch mode rebuilds a table and renames it back, and a view on that table
    would make SQLite refuse the rename; the legacy rename leaves views alone (they still
    match). The connection's own setting is put back afterwards. Elsewhere: nothing."""
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.driver_connection
    before = raw.execute("PRAGMA legacy_alter_table").fetchone()[0]
    raw.execute("PRAGMA legacy_alter_table = ON")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA legacy_alter_table = {int(before)}")


def server_url(url: URL) -> URL:
    """The same server, on a database that always exists there (to create or drop others)."""
    maintenance = {"postgresql": "postgres", "mysql": "information_schema", "mariadb": "information_schema"}
    return url.set(database=maintenance[url.get_backend_name()])


def target_metadata(config: Config) -> MetaData:
    """Import the MetaData named by ``target_metadata = module:attribute``."""
    path = config.get_main_option("target_metadata")
    if not path or ":" not in path:
        raise CommandError(
            f"target_metadata = {path!r} in alembic.ini: expected module:attribute, e.g. my_project.models:metadata."
        )
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise CommandError(
            f"target_metadata = {path}: cannot import {module_name!r} ({error}). "
            "Run alembic from the project folder, or fix the path in alembic.ini."
        ) from None
    try:
        found = reduce(getattr, attribute.split("."), module)
    except AttributeError:
        raise CommandError(f"target_metadata = {path}: {module_name} has no {attribute!r}.") from None
    found = getattr(found, "metadata", found)  # a declarative Base works too
    if not isinstance(found, MetaData):
        raise CommandError(f"target_metadata = {path} is a {type(found).__name__}, not a MetaData.")
    return found
