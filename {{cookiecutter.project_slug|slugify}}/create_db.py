"""Cookbook recipe 1: build an up-to-date database from scratch, then stamp it at head.

    python create_db.py              # the database of $DATABASE_URL, else alembic.ini
    python create_db.py --url URL    # another database
    python create_db.py --sql        # print the SQL instead of running it

Creates every table of the target MetaData with ``create_all()``, then the views,
functions and triggers declared on it (migrations/replaceable.py), and records the head
revision in ``alembic_version``, in one transaction (the shared-connection recipe), so
a new database never replays the whole history. MariaDB commits DDL as it goes: there, a
failed build removes what it created. A PostgreSQL or MariaDB database that
does not exist yet is created first. A database that already has tables, views or a
version row is refused, and nothing in it is touched: use ``alembic upgrade head`` there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import URL, Connection, create_mock_engine, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError

from migrations.failures import describe
from migrations.lock import lock_timeout, migration_lock
from migrations.replaceable import create_declared_objects, declared_objects, execute
from migrations.settings import database_url, make_engine, server_url, target_metadata
from migrations.stamp import stamp_head

ALEMBIC_INI = Path(__file__).resolve().with_name("alembic.ini")


def create_db(config: Config, url: URL | str | None = None) -> str:
    """Create the schema and stamp head; return what was done, in one line."""
    if url is not None:
        config.attributes["database_url"] = url
    url = database_url(config)
    metadata = target_metadata(config)
    created_database = ensure_database_exists(url)
    engine = make_engine(url)
    # The migration lock, as `alembic upgrade` takes it, for the whole build: on MariaDB it
    # must outlast the transaction, which would otherwise end after the lock is let go.
    try:
        with engine.connect() as connection, migration_lock(connection, lock_timeout(config)):
            with connection.begin():
                refuse_if_not_empty(connection, url)  # before anything is built, and outside the undo
            try:
                with connection.begin():
                    metadata.create_all(connection)
                    objects = create_declared_objects(connection, metadata)  # views, functions: after the tables
                    stamp_head(config, connection)  # through env.py; the history is read once per process
                    head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            except Exception:
                if not created_database:
                    undo_partial_build(engine, metadata)
                raise
    except Exception:
        if created_database:  # ours, and now closed: drop it whole
            drop_database(url)
        raise
    tables = ", ".join([*metadata.tables, *(obj.name.partition("(")[0] for obj in objects)]) or "nothing"
    where = url.render_as_string(hide_password=True)
    return f"{'Created database and built' if created_database else 'Built'} {where}: {tables}; stamped at head {head}."


def undo_partial_build(engine, metadata) -> None:
    """After a failed build where DDL cannot be rolled back (MariaDB), remove the tables and
    objects it made, so a fixed create_db.py can run again (the database was empty:
    refuse_if_not_empty checked). PostgreSQL and SQLite rolled the whole build back."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        return
    with engine.connect() as connection:
        for obj in reversed(declared_objects(metadata)):
            try:
                execute(connection, obj.kind.drop(obj, connection.dialect.name))
            except DBAPIError:
                pass  # it was never created
        metadata.drop_all(connection)
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        connection.commit()


def drop_database(url: URL) -> None:
    """Drop a PostgreSQL/MariaDB database, if it is there: one this run created (and the tests' own)."""
    admin = make_engine(server_url(url)).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        name = connection.dialect.identifier_preparer.quote(url.database)
        force = " WITH (FORCE)" if connection.dialect.name == "postgresql" else ""
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
    admin.dispose()


def refuse_if_not_empty(connection: Connection, url: URL) -> None:
    inspector = inspect(connection)
    found = sorted(inspector.get_table_names()) + sorted(inspector.get_view_names())
    if found:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise CommandError(
            f"{url.render_as_string(hide_password=True)} is not empty ({shown}): create_db.py "
            "only builds new databases and changed nothing; run `alembic upgrade head` instead."
        )


def ensure_database_exists(url: URL) -> bool:
    """Create a missing PostgreSQL/MariaDB database; True when one was created."""
    if url.get_backend_name() not in ("postgresql", "mysql", "mariadb") or not url.database:
        return False
    try:
        make_engine(url).connect().close()
        return False
    except OperationalError:
        engine = make_engine(server_url(url)).execution_options(isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            preparer = connection.dialect.identifier_preparer
            if database_exists(connection, url.database):
                raise  # it exists: the error was something else (credentials, permissions)
            connection.exec_driver_sql(f"CREATE DATABASE {preparer.quote(url.database)}")
        return True


def database_exists(connection: Connection, name: str) -> bool:
    if connection.dialect.name == "postgresql":
        query = text("SELECT 1 FROM pg_database WHERE datname = :name")
    else:
        query = text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :name")
    return connection.execute(query, {"name": name}).first() is not None


def print_sql(config: Config, url: URL | str | None = None) -> None:
    """--sql: the CREATE statements and the stamp, as SQL, for review or a DBA."""
    if url is not None:
        config.attributes["database_url"] = url
    url = database_url(config)
    metadata = target_metadata(config)

    def dump(statement, *_args, **_kwargs):
        print(f"{str(statement.compile(dialect=mock.dialect)).strip()};\n")

    mock = create_mock_engine(url, dump)
    metadata.create_all(mock, checkfirst=False)
    for obj in declared_objects(metadata):
        statement = obj.kind.create(obj)
        if mock.dialect.name in ("mysql", "mariadb") and ";" in statement:  # see replaceable.execute
            print(f"DELIMITER //\n{statement}\n//\nDELIMITER ;\n")
        else:
            print(f"{statement};\n")
    command.stamp(config, "head", sql=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: $DATABASE_URL, then alembic.ini)")
    parser.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    parser.add_argument("-c", "--config", default=str(ALEMBIC_INI), help="path to alembic.ini")
    args = parser.parse_args(argv)
    config = Config(args.config)
    try:
        if args.sql:
            print_sql(config, args.url)
        else:
            print(create_db(config, args.url))
    except CommandError as error:
        print(f"create_db.py: error: {error}", file=sys.stderr)
        return 1
    except DBAPIError as error:  # cannot connect, may not create the database, bad SQL, ...
        where = database_url(config).render_as_string(hide_password=True)
        print(f"create_db.py: error: {describe(error)} (on {where}; nothing was left behind)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
