"""The migration lock: concurrent ``alembic upgrade`` runs wait for each other, then find
nothing left to do, instead of colliding with "already exists" errors.

- PostgreSQL: a session-level advisory lock keyed on the version table (advisory locks
  are per database already); inside a caller's transaction, a transaction-level one.
- MariaDB/MySQL: ``GET_LOCK`` on a name made of the current database (a tenant's, once
  env.py has ``USE``d it: migrations/tenants.py) and the version table. It
  is a session lock: inside a caller's own transaction it is let go when Alembic is done,
  before the caller commits, so such a caller should hold ``migration_lock`` around its
  transaction itself (create_db.py does; the lock can be taken again on the same session).
- SQLite: the run is one ``BEGIN IMMEDIATE`` transaction (see env.py and settings.py),
  which takes the write lock before the version is read. Here the driver's busy timeout
  (pysqlite's default: 5 s) is set to ours, for as long as the lock is held.

SQLAlchemy 2.x autobegins: a query run before ``context.configure()`` would leave a
transaction open, Alembic would treat it as the caller's and never commit. So the lock
queries end their own transaction, unless the caller's transaction was already there.

The wait is ``migration_lock_timeout`` seconds (alembic.ini or pyproject.toml, or the
``MIGRATION_LOCK_TIMEOUT`` environment variable); then a one-line error, nothing applied,
on every database (``gave_up``).

A live table is another wait: DDL on a table that a running query uses waits for it, and
every query on that table then queues behind the DDL, so one slow report stops the whole
application. ``ddl_lock_timeout`` seconds (default 10; ``DDL_LOCK_TIMEOUT`` overrides it; 0:
no limit) bounds that wait, for every statement of the run (``ddl_lock_timeout``):
PostgreSQL's ``lock_timeout``, MariaDB's ``lock_wait_timeout`` (whole seconds). A revision
that waits longer fails in one line, as any failed revision does (nothing applied on
PostgreSQL), and can be run again when the table is quieter.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import URL, Connection, text
from sqlalchemy.exc import DBAPIError

DEFAULT_TIMEOUT = 60.0
POLL_SECONDS = 0.1


def lock_timeout(config: Config) -> float:
    raw = os.environ.get("MIGRATION_LOCK_TIMEOUT") or config.get_alembic_option("migration_lock_timeout")
    try:
        return float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        raise CommandError(f"migration_lock_timeout = {raw!r}: expected a number of seconds.") from None


DEFAULT_DDL_TIMEOUT = 10.0


def ddl_timeout(config: Config) -> float:
    """Seconds a statement of the run may wait for a lock on a table (0: no limit)."""
    raw = os.environ.get("DDL_LOCK_TIMEOUT") or config.get_alembic_option("ddl_lock_timeout")
    try:
        seconds = float(raw) if raw else DEFAULT_DDL_TIMEOUT
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise CommandError(f"ddl_lock_timeout = {raw!r}: expected a number of seconds (0: no limit).")
    return seconds


@contextmanager
def ddl_lock_timeout(connection: Connection, seconds: float) -> Iterator[None]:
    """The run's statements wait at most ``seconds`` for a lock on a table; the session's own
    setting is put back after (a caller's connection goes on as it was)."""
    dialect = connection.dialect.name
    if not seconds or dialect not in ("postgresql", "mysql", "mariadb"):
        yield
        return
    run = partial(_in_own_transaction, connection, connection.in_transaction())
    if dialect == "postgresql":
        before = run("SHOW lock_timeout")
        run(f"SET lock_timeout = '{max(1, round(seconds * 1000))}ms'")
        restore = f"SET lock_timeout = '{before}'"
    else:
        before = run("SELECT @@SESSION.lock_wait_timeout")
        run(f"SET SESSION lock_wait_timeout = {max(1, math.ceil(seconds))}")
        restore = f"SET SESSION lock_wait_timeout = {before}"
    try:
        yield
    finally:
        if not (connection.closed or connection.invalidated):
            try:
                run(restore)
            except DBAPIError:  # in a failed transaction of the caller's: its rollback undoes the SET
                pass


def _in_own_transaction(connection: Connection, external: bool, sql: str, **params: object) -> object:
    """One query (its value, if it returns rows). Inside the caller's transaction we must not
    commit; otherwise we must, after each query (see above: SQLAlchemy autobegins)."""
    result = connection.execute(text(sql), params)
    value = result.scalar() if result.returns_rows else None
    if not external:
        connection.commit()
    return value


class LockTimeout(CommandError):
    """The migration lock was not had within the timeout; nothing was done."""


def gave_up(url: URL, timeout: float) -> LockTimeout:
    """The error for a migration lock that was not had within the timeout."""
    sqlite = url.get_backend_name() == "sqlite"
    holder = "another migration or write is running" if sqlite else "another migration is running"
    return LockTimeout(
        f"gave up after {timeout:g} s waiting for the migration lock on {url.render_as_string(hide_password=True)}: "
        f"{holder}. Retry when it is done, or raise migration_lock_timeout in alembic.ini."
    )


@contextmanager
def migration_lock(connection: Connection, timeout: float, version_table: str = "alembic_version") -> Iterator[None]:
    """Hold the migration lock for this database around the block."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        with sqlite_busy_timeout(connection, timeout):
            yield
        return
    if dialect not in ("postgresql", "mysql", "mariadb"):
        yield
        return
    external = connection.in_transaction()
    ask = partial(_in_own_transaction, connection, external)

    database = connection.engine.url.database
    if dialect != "postgresql":  # the current one: a tenant's (migrations/tenants.py) is USE'd
        database = ask("SELECT DATABASE()") or database
    name = f"{database}.{version_table}"

    if dialect == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        scope = "xact_" if external else ""  # a transaction lock ends with the caller's commit
        take, release = f"SELECT pg_try_advisory_{scope}lock(:key)", "SELECT pg_advisory_unlock(:key)"
        params = {"key": key}
    else:
        take, release = "SELECT GET_LOCK(:name, 0)", "SELECT RELEASE_LOCK(:name)"
        params = {"name": "alembic:" + hashlib.sha256(name.encode()).hexdigest()[:48]}  # <= 64 characters

    if dialect == "postgresql" and not external and connection.dialect.server_version_info >= (14,):
        # A killed migrator's session would otherwise hold the lock until its statement ends.
        ask("SELECT set_config('client_connection_check_interval', '1s', false)")
    deadline = time.monotonic() + timeout
    while not ask(take, **params):
        if time.monotonic() >= deadline:
            raise gave_up(connection.engine.url, timeout)
        time.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        if not (external and dialect == "postgresql"):
            if not external and connection.in_transaction():
                connection.rollback()  # whatever a failed or read-only run left open
            ask(release, **params)


@contextmanager
def sqlite_busy_timeout(connection: Connection, timeout: float) -> Iterator[None]:
    """SQLite waits for a write lock as long as its busy timeout: ours, around the block.
    Set on the driver's connection, so no transaction is begun (see above)."""
    raw = connection.connection.dbapi_connection.cursor()  # sqlite3's, or aiosqlite's adapter
    raw.execute("PRAGMA busy_timeout")
    before = raw.fetchone()[0]
    raw.execute(f"PRAGMA busy_timeout = {max(0, round(timeout * 1000))}")
    try:
        yield
    finally:
        if not (connection.closed or connection.invalidated):
            raw.execute(f"PRAGMA busy_timeout = {before}")
