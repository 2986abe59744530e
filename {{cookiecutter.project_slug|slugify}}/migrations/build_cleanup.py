"""create_db.py's safety net: a missing database created first, and what a failed or killed
build leaves removed, so that a build leaves nothing behind (MariaDB commits each DDL
statement, so there the build marks what it will make in ``create_db_in_progress``)."""

from __future__ import annotations

from alembic.util import CommandError
from sqlalchemy import URL, Column, Connection, MetaData, String, Table, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError

from migrations.failures import describe
from migrations.replaceable import execute
from migrations.settings import run_on_connection, server_url

NON_TRANSACTIONAL_DDL = ("mysql", "mariadb")  # MariaDB/MySQL commit each DDL statement

IN_PROGRESS = Table(
    "create_db_in_progress",
    MetaData(),
    Column("kind", String(32), nullable=False),
    Column("name", String(255), nullable=False),
)


# --- MariaDB: the build's leftovers, after a failure or a kill ---------------------------

MARIADB_OBJECTS = """
    SELECT 'table', TABLE_NAME FROM information_schema.TABLES
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'
    UNION ALL
    SELECT 'view', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()
    UNION ALL
    SELECT LOWER(ROUTINE_TYPE), ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()
    UNION ALL
    SELECT 'trigger', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()
"""


def objects_in_database(connection: Connection) -> list[tuple[str, str]]:
    """MariaDB: (kind, name) of every table, view, routine and trigger of the database."""
    return [(kind, name) for kind, name in connection.execute(text(MARIADB_OBJECTS))]


def finish_killed_build(connection: Connection, url: URL, version: str) -> str | None:
    """MariaDB: the marker of a build that was killed (or whose undo failed) is here. Its
    leftovers are its own: remove them, then build as usual (None); or if it got as far as
    its stamp, just remove the marker (and say so)."""
    if connection.dialect.name not in NON_TRANSACTIONAL_DDL:
        return None
    with connection.begin():
        if not inspect(connection).has_table(IN_PROGRESS.name):
            return None
        planned = [(kind, name) for kind, name in connection.execute(IN_PROGRESS.select())]
        stamped = (
            inspect(connection).has_table(version)
            and connection.execute(text(f"SELECT version_num FROM {version}")).first()
        )
    if stamped:  # the build was complete: its stamp commits after the last DDL
        with connection.begin():
            IN_PROGRESS.drop(connection)
        where = url.render_as_string(hide_password=True)
        return f"{where} was built and stamped at head {stamped[0]} by an interrupted create_db.py; removed its marker."
    remove_leftovers(connection, url, planned)
    return None


def remove_leftovers(connection: Connection, url: URL, planned: list[tuple[str, str]]) -> None:
    """Drop the planned objects that exist, then the marker: only objects named in the plan,
    all absent before the build began (refuse_if_not_empty), and only empty tables. If one
    has rows, nothing is dropped."""
    wanted = {(kind, name if kind == "table" else name.lower()) for kind, name in planned}
    with connection.begin():
        found = objects_in_database(connection)
        ours = [(kind, name) for kind, name in found if (kind, name if kind == "table" else name.lower()) in wanted]
        tables = [name for kind, name in ours if kind == "table"]
        used = tables_with_rows(connection, tables)
    if used:
        raise CommandError(
            f"{url.render_as_string(hide_password=True)} holds an unfinished create_db.py build (listed in "
            f"{IN_PROGRESS.name}), and {', '.join(used)} {'has' if len(used) == 1 else 'have'} rows since: "
            "create_db.py removes only empty tables and changed nothing. Keep those rows elsewhere and "
            "empty the table(s), then run create_db.py again."
        )
    quote = connection.dialect.identifier_preparer.quote
    order = ["trigger", "view", "function", "procedure"]
    with connection.begin():
        for kind, name in sorted((entry for entry in ours if entry[0] != "table"), key=lambda e: order.index(e[0])):
            execute(connection, f"DROP {kind.upper()} IF EXISTS {quote(name)}")
        if tables:  # ours alone, so their foreign keys to each other need no order
            connection.exec_driver_sql("SET SESSION foreign_key_checks = 0")
            try:
                connection.exec_driver_sql(f"DROP TABLE IF EXISTS {', '.join(map(quote, tables))}")
            finally:
                connection.exec_driver_sql("SET SESSION foreign_key_checks = 1")
        IN_PROGRESS.drop(connection, checkfirst=True)


def tables_with_rows(connection: Connection, tables: list[str]) -> list[str]:
    """Which of these tables have a row: one query for all of them."""
    if not tables:
        return []
    quote = connection.dialect.identifier_preparer.quote
    query = " UNION ALL ".join(
        f"SELECT {index} FROM DUAL WHERE EXISTS (SELECT 1 FROM {quote(name)})" for index, name in enumerate(tables)
    )
    return [tables[index] for (index,) in connection.exec_driver_sql(query)]


# --- After a failed build ----------------------------------------------------------------

NOTHING_LEFT = "nothing was left behind"
DROP_WHEN_CLOSED = "drop when closed"


def clean_up_failed_build(connection: Connection, url: URL, planned: list[tuple[str, str]], created: bool) -> str:
    """Still under the lock: undo what this build made (MariaDB; the others rolled it back),
    and drop the database if this run created it and no one else can have used it.
    Returns what was left, for the error message."""
    try:
        if connection.in_transaction():
            connection.rollback()
        if connection.dialect.name in NON_TRANSACTIONAL_DDL:
            remove_leftovers(connection, url, planned)
    except Exception as error:  # the marker stays: a rerun finishes the job
        return (
            f"its leftovers could not be removed ({describe(error)}): they are listed in "
            f"{IN_PROGRESS.name}; run create_db.py again to remove them and build"
        )
    if not created:
        return NOTHING_LEFT
    reason = why_not_ours_alone(connection)
    if reason:
        return f"{NOTHING_LEFT} except the database it created, kept because {reason}"
    if connection.dialect.name == "postgresql":
        return DROP_WHEN_CLOSED  # DROP DATABASE needs every session gone, ours included
    connection.exec_driver_sql(f"DROP DATABASE {connection.dialect.identifier_preparer.quote(url.database)}")
    return f"{NOTHING_LEFT}: the database it created was dropped"  # MariaDB: GET_LOCK is server-wide, still ours


def why_not_ours_alone(connection: Connection) -> str | None:
    """Why the database this run created may have been used by others, or None."""
    if connection.dialect.name == "postgresql":
        others = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
    else:
        others = "SELECT count(*) FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()"
    with connection.begin():
        sessions = connection.execute(text(others)).scalar_one()
        inspector = inspect(connection)
        found = inspector.get_table_names() + inspector.get_view_names()
        if connection.dialect.name in NON_TRANSACTIONAL_DDL:
            found += [name for kind, name in objects_in_database(connection) if kind in ("function", "procedure")]
    if sessions:
        return f"{sessions} other session{' is' if sessions == 1 else 's are'} connected to it"
    if found:
        return f"it is not empty ({', '.join(sorted(found)[:5])})"
    return None


def drop_unused_database(url: URL) -> str:
    """PostgreSQL: a plain DROP DATABASE, which fails if anyone else is connected."""

    def drop(connection: Connection) -> None:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql(f"DROP DATABASE {connection.dialect.identifier_preparer.quote(url.database)}")

    try:
        run_on_connection(server_url(url), drop)
    except DBAPIError as error:
        return f"{NOTHING_LEFT} except the database it created, kept because DROP DATABASE said: {describe(error)}"
    return f"{NOTHING_LEFT}: the database it created was dropped"


def build_failed(url: URL, error: BaseException, left: str) -> CommandError:
    where = url.render_as_string(hide_password=True)
    return CommandError(f"building {where} failed: {describe(error)}; {left}.")


# --- A missing database -------------------------------------------------------------------


def ensure_database_exists(url: URL) -> bool:
    """Create a missing PostgreSQL/MariaDB database; True when this call created it."""
    if not creates_databases(url):
        return False
    try:
        run_on_connection(url, lambda connection: None)
        return False
    except OperationalError as error:
        return create_missing_database(url, error)


def creates_databases(url: URL) -> bool:
    """Whether a missing database of ``url`` is created here (PostgreSQL, MariaDB)."""
    return url.get_backend_name() in ("postgresql", *NON_TRANSACTIONAL_DDL) and bool(url.database)


def create_missing_database(url: URL, connect_error: OperationalError) -> bool:
    """After ``connect_error`` on ``url``: create its database, if that is what is missing
    (else raise ``connect_error``: credentials, permissions, ...); True when this call
    created it, False when another run did meanwhile."""

    def create(connection: Connection) -> bool:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        if database_exists(connection, url.database):
            raise connect_error  # it exists: the error was something else (credentials, permissions)
        name = connection.dialect.identifier_preparer.quote(url.database)
        try:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        except DBAPIError:
            if database_exists(connection, url.database):
                return False  # another run created it just now: not ours
            raise
        return True

    return run_on_connection(server_url(url), create)


def database_exists(connection: Connection, name: str) -> bool:
    if connection.dialect.name == "postgresql":
        query = text("SELECT 1 FROM pg_database WHERE datname = :name")
    else:
        query = text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :name")
    return connection.execute(query, {"name": name}).first() is not None
