"""Where the database and the target MetaData come from; shared by env.py and create_db.py.

- the URL: ``config.attributes["database_url"]`` (set by create_db.py --url, or by a
  program calling Alembic), else the ``DATABASE_URL`` environment variable, else
  ``sqlalchemy.url`` in alembic.ini;
- the MetaData: ``target_metadata = module:attribute`` in alembic.ini;
- the Engine: SQLAlchemy's, with SQLite made transactional (pysqlite would otherwise
  commit every DDL statement on its own);
- async URLs (``postgresql+asyncpg``, ``sqlite+aiosqlite``, ...): ``run_on_connection``
  runs the same sync code on an AsyncEngine's connection, through ``run_sync``.

Mistakes here are expected (a typo in a URL, a moved module), so they raise
``alembic.util.CommandError``: the ``alembic`` command prints one line, no traceback.
"""

from __future__ import annotations

import asyncio
import configparser
import importlib
import importlib.util
import inspect
import os
import re
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, reduce
from typing import TYPE_CHECKING, Any, TypeVar

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.util import CommandError
from sqlalchemy import URL, Connection, Engine, MetaData, create_engine, event, make_url, pool
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from migrations.environments import url_variable
from migrations.lock import gave_up

if TYPE_CHECKING:  # sqlalchemy.ext.asyncio needs greenlet: imported only where an async URL is used
    from sqlalchemy.engine import ExceptionContext
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def database_url(config: Config) -> URL:
    """The database to migrate: the attribute, then ``$DATABASE_URL``, then alembic.ini (for
    an environment run with ``--name``, see migrations/environments.py)."""
    given = config.attributes.get("database_url")
    if isinstance(given, URL):
        return given
    variable = url_variable(config)  # DATABASE_URL, or another environment's own
    if given:
        raw, source = given, "the database URL given"
    elif os.environ.get(variable):
        raw, source = os.environ[variable], variable
    else:
        source = "sqlalchemy.url in alembic.ini"
        try:
            raw = config.get_main_option("sqlalchemy.url")
        except configparser.Error:  # a lone % (a quoted password): never echo the text
            raise CommandError(
                f"{source}: write each % as %% in alembic.ini, or set the URL in DATABASE_URL instead."
            ) from None
    if not raw:
        section = config.config_ini_section
        where = "alembic.ini" if section == "alembic" else f"alembic.ini's [{section}]"
        raise CommandError(f"No database URL: set {variable} or sqlalchemy.url in {where}.")
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
        # IMMEDIATE takes the write lock at once: concurrent migrations queue up (a second
        # connection the migration opens itself only reads: see _begin_immediate).
        event.listen(engine, "connect", _no_driver_transactions)
        event.listen(engine, "begin", _begin_immediate)
        event.listen(engine, "handle_error", _a_reader_cannot_write)
    elif engine.dialect.driver == "pymysql":
        event.listen(engine, "do_connect", _pymysql_connect)
    return engine


def _pymysql_connect(dialect, _record, cargs, cparams):
    """PyMySQL's connect, but one TLS context for every connection of this process whose URL
    sets no TLS option. There PyMySQL (1.2: its PREFERRED mode, TLS when the server offers it,
    unverified) builds a new default SSLContext for each connection, loading the system's CA
    store: about 20 ms, where the connection itself takes under 1 ms (the migration suite opens
    a dozen). The shared one is the same context, made the same way once. A URL with TLS
    options (ssl_ca, ssl_verify_cert...) gets its own, as before."""
    return _shared_preferred_context(dialect.loaded_dbapi.connections.Connection)(*cargs, **cparams)


@cache
def _shared_preferred_context(connection_class: type) -> type:
    shared: list[Any] = []

    class Connection(connection_class):  # PyMySQL's own, but for the context it builds
        def _create_ssl_ctx(self, sslp, *args, **kwargs):
            if sslp != {} or args or kwargs:  # TLS options given: a context of their own
                return super()._create_ssl_ctx(sslp, *args, **kwargs)
            if not shared:  # two threads may both build one: the same settings either way
                shared.append(super()._create_ssl_ctx(sslp))
            return shared[0]

    return Connection


T = TypeVar("T")


def run_on_connection(
    target: URL | Engine | AsyncEngine | AsyncConnection,
    fn: Callable[[Connection], T],
    cannot_connect: Callable[[OperationalError, URL], Exception] | None = None,
) -> T:
    """``fn(connection)`` on a new Connection of ``target`` (a URL: ours, see make_engine),
    closed afterwards; ``cannot_connect(error, url)`` is raised if it cannot connect.

    An async URL or AsyncEngine (``postgresql+asyncpg``, ``sqlite+aiosqlite``, ...) runs
    ``fn`` as Alembic's async template does: on an AsyncEngine's connection through
    ``run_sync``, under ``asyncio.run``. Inside a caller's ``run_sync`` (an async app
    migrating in its own event loop), its AsyncEngine or AsyncConnection is used there."""
    if isinstance(target, URL) and is_async(target) and target.get_backend_name() == "sqlite":
        # aiosqlite runs sqlite3 in a thread: with no event loop to share, sqlite3 itself does
        # the same on the same file, and the migration lock (lock.py) talks to it directly.
        target = target.set(drivername="sqlite")
    if isinstance(target, URL):
        target = make_async_engine(target) if is_async(target) else make_engine(target)
    if isinstance(target, Engine):
        return _run_sync(target, fn, cannot_connect)
    from sqlalchemy.ext.asyncio import AsyncConnection  # async from here: greenlet is installed
    from sqlalchemy.util.concurrency import in_greenlet

    if in_greenlet():  # inside the caller's run_sync: its connection, or its engine's sync side
        if isinstance(target, AsyncConnection):
            return fn(target.sync_connection)
        return _run_sync(target.sync_engine, fn, cannot_connect)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no event loop: the alembic command, create_db.py
        pass
    else:
        raise CommandError(
            "Alembic was called inside an event loop: call it through run_sync, e.g. "
            "await connection.run_sync(lambda sync_connection: command.upgrade(config, 'head'))."
        )
    if isinstance(target, AsyncConnection):
        raise CommandError("An AsyncConnection is used through run_sync, inside its own event loop.")
    return asyncio.run(_run_async(target, fn, cannot_connect))


def is_async_connectable(shared: object) -> bool:
    """An AsyncEngine or AsyncConnection (if one exists, sqlalchemy.ext.asyncio is imported)."""
    if "sqlalchemy.ext.asyncio" not in sys.modules:
        return False
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    return isinstance(shared, (AsyncConnection, AsyncEngine))


def _run_sync(engine: Engine, fn: Callable[[Connection], T], cannot_connect) -> T:
    try:
        connection = engine.connect()
    except OperationalError as error:
        raise (cannot_connect(error, engine.url) if cannot_connect else error) from None
    with connection:
        return fn(connection)


def is_async(url: URL) -> bool:
    """True for an async driver's URL (asyncpg, psycopg_async, aiosqlite, aiomysql, asyncmy)."""
    try:
        return url.get_dialect().is_async
    except (ArgumentError, NoSuchModuleError, ImportError):  # make_engine says so, in one line
        return False


async def _run_async(engine: AsyncEngine, fn: Callable[[Connection], T], cannot_connect) -> T:
    """Alembic's async template: the sync ``fn`` on an AsyncEngine's connection."""
    try:
        try:
            connection = await engine.connect().start()
        except (DBAPIError, OSError) as error:
            # asyncpg says "database does not exist" as a DBAPIError, "connection refused" as an
            # OSError: an OperationalError, as the sync drivers' (and callers expect).
            if not isinstance(error, OperationalError):
                error = OperationalError("connect", None, getattr(error, "orig", None) or error)
            raise (cannot_connect(error, engine.url) if cannot_connect else error) from None
        try:
            return await connection.run_sync(fn)
        finally:
            await connection.close()
    finally:
        await engine.dispose()


def make_async_engine(url: URL) -> AsyncEngine:
    """make_engine's AsyncEngine, for an async URL (an async app may use it too: its SQLite
    is transactional, so a caller's rollback undoes migrations); a missing package is a
    one-line error."""
    safe = url.render_as_string(hide_password=True)
    if importlib.util.find_spec("greenlet") is None:
        raise CommandError(f"Cannot use database URL {safe}: async drivers need greenlet (pip install greenlet).")
    from sqlalchemy.ext.asyncio import create_async_engine

    try:
        engine = create_async_engine(url, poolclass=pool.NullPool)
    except ImportError as error:  # the async driver (DBAPI) is not installed
        package = (error.name or str(error)).split(".")[0]
        raise CommandError(
            f"Cannot use database URL {safe}: its driver is not installed (pip install {package})."
        ) from None
    except (ArgumentError, NoSuchModuleError) as error:
        raise CommandError(f"Cannot use database URL {safe}: {str(error).strip().splitlines()[0]}") from None
    if engine.dialect.name == "sqlite":  # transactional, as make_engine's (SQLAlchemy's aiosqlite recipe)
        event.listen(engine.sync_engine, "connect", _no_driver_transactions)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        event.listen(engine.sync_engine, "handle_error", _a_reader_cannot_write)
    return engine


def _no_driver_transactions(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None


# Per thread: for each engine, the connection whose BEGIN IMMEDIATE this thread holds.
_writers = threading.local()
_READER = "migrations.settings: a reader beside the migration's own connection"


def _begin_immediate(connection: Connection) -> None:
    writers = _writers.__dict__.setdefault("by_engine", weakref.WeakKeyDictionary())  # neither kept alive
    held = writers.get(connection.engine)
    writer = held() if held is not None else None
    if writer is not None and writer is not connection and writer.in_transaction():
        # A second connection of the engine, opened by the migration itself (a revision that
        # inspects through op.get_bind().engine): it would wait for the write lock its own
        # thread holds until the busy timeout. Deferred, it reads what is committed, as on
        # PostgreSQL, and a write of its fails at once ("database is locked").
        connection.connection.dbapi_connection.cursor().execute("PRAGMA busy_timeout = 0")  # or aiosqlite's
        connection.info[_READER] = True  # see _a_reader_cannot_write
        connection.exec_driver_sql("BEGIN")
        return
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        writers[connection.engine] = weakref.ref(connection)
    except OperationalError as error:
        if "database is locked" not in str(error.orig):
            raise
        # The write lock is SQLite's migration lock: it was not had within the busy timeout,
        # which migrations/lock.py sets to migration_lock_timeout.
        cursor = connection.connection.dbapi_connection.cursor()  # sqlite3's, or aiosqlite's adapter
        cursor.execute("PRAGMA busy_timeout")
        waited = cursor.fetchone()[0] / 1000
        raise gave_up(connection.engine.url, waited) from None


def _a_reader_cannot_write(context: ExceptionContext) -> Exception | None:
    """The error of a write through a second connection of the migration's engine, in words."""
    connection = context.connection
    if connection is None or not connection.info.get(_READER) or "locked" not in str(context.original_exception):
        return None
    said = type(context.original_exception)(
        "database is locked: a second connection of the migration's engine cannot write while the migration "
        "holds SQLite's write lock (it would wait for itself); run the statement through op.get_bind()"
    )
    return OperationalError(context.statement, context.parameters, said)  # env.py names the revision


def transactional_sqlite(connection: Connection) -> bool:
    """True for a SQLite connection made by make_engine: its DDL is transactional."""
    return connection.dialect.name == "sqlite" and event.contains(connection.engine, "begin", _begin_immediate)


# Batch mode's last statement: the rebuilt copy of a table takes the table's name.
_BATCH_RENAME = re.compile(r'^\s*ALTER TABLE (?:\S+\.)?"?_alembic_tmp_.* RENAME TO ', re.IGNORECASE | re.DOTALL)


@contextmanager
def sqlite_legacy_rename(connection: Connection) -> Iterator[None]:
    """On SQLite, for batch mode only: it rebuilds a table as ``_alembic_tmp_<name>``, drops
    the table and renames the copy back. SQLite (3.26+) checks every view when a table is
    renamed, and a view on the dropped table makes it refuse; the legacy rename leaves views
    alone (they match the new table). Any other rename keeps SQLite's own behaviour, which
    rewrites the foreign keys, views and triggers that name the table, as with Alembic's own
    env.py. The connection's own setting is put back afterwards. Elsewhere: nothing."""
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.dbapi_connection  # sqlite3's, or aiosqlite's adapter
    cursor = raw.cursor()
    cursor.execute("PRAGMA legacy_alter_table")
    before = bool(cursor.fetchone()[0])
    state = {"legacy": before}

    def legacy_for_batch_renames(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        wanted = bool(_BATCH_RENAME.match(statement)) or before
        if wanted != state["legacy"]:
            raw.cursor().execute(f"PRAGMA legacy_alter_table = {int(wanted)}")
            state["legacy"] = wanted

    event.listen(connection, "before_cursor_execute", legacy_for_batch_renames)
    try:
        yield
    finally:
        event.remove(connection, "before_cursor_execute", legacy_for_batch_renames)
        if state["legacy"] != before and not (connection.closed or connection.invalidated):
            raw.cursor().execute(f"PRAGMA legacy_alter_table = {int(before)}")


def server_url(url: URL) -> URL:
    """The same server, on a database that always exists there (to create or drop others)."""
    maintenance = {"postgresql": "postgres", "mysql": "information_schema", "mariadb": "information_schema"}
    return url.set(database=maintenance[url.get_backend_name()])


def target_metadata(config: Config) -> MetaData:
    """Import the MetaData named by ``target_metadata = module:attribute`` (alembic.ini, or
    ``[tool.alembic]`` in pyproject.toml)."""
    path = config.get_alembic_option("target_metadata")
    if not path or ":" not in path:
        raise CommandError(
            f"target_metadata = {path!r} in alembic.ini or pyproject.toml: "
            "expected module:attribute, e.g. my_project.models:metadata."
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


# What env_hooks may not set: env.py sets them from elsewhere (the URL, the connection,
# target_metadata) or has its own, which the app's run after (see env_hooks()).
_NOT_HOOKS = {"connection", "url", "dialect_name", "dialect_opts", "target_metadata", "fn", "as_sql"}
CHAINED_HOOKS = ("process_revision_directives", "render_item", "include_object")


def env_hooks(config: Config) -> dict[str, Any]:
    """What the application's own env.py passed to ``context.configure()``, from the module
    named by ``env_hooks = module`` (alembic.ini or ``[tool.alembic]``): each module-level
    name that is an option of ``EnvironmentContext.configure`` (``include_object``,
    ``include_name``, ``include_schemas``, ``compare_type``, ``render_item``,
    ``user_module_prefix``, ``version_table``, ...). None set: an empty dict. Ours run too:
    ``include_object`` (an object is left out when either leaves it out), ``render_item``
    (the app's first) and ``process_revision_directives`` (the app's first)."""
    path = config.get_alembic_option("env_hooks")
    if not path:
        return {}
    try:
        module = importlib.import_module(path)
    except ImportError as error:
        raise CommandError(f"env_hooks = {path}: cannot import it ({error}).") from None
    options = set(inspect.signature(EnvironmentContext.configure).parameters) - {"self", "kw"}
    found = {name: value for name, value in vars(module).items() if name in options}
    refused = sorted(set(found) & _NOT_HOOKS)
    if refused:
        raise CommandError(
            f"env_hooks = {path} sets {', '.join(refused)}: set the URL and target_metadata in alembic.ini instead."
        )
    if not found:
        raise CommandError(
            f"env_hooks = {path} defines none of context.configure()'s options (include_object, render_item, ...)."
        )
    return found
