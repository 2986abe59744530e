"""A new tenant at head: create_db.py's build, in a new schema (PostgreSQL) or database
(MariaDB), for application code (a sign-up) and ``python -m migrations.cli create_tenant NAME``."""

from __future__ import annotations

from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import URL, Connection, text
from sqlalchemy.exc import DBAPIError

from migrations.environments import version_table
from migrations.failures import cannot_connect, describe
from migrations.settings import database_url, run_on_connection
from migrations.tenant_directory import stands
from migrations.tenants import in_tenant, refuse_sqlite, tenant_name


def create_tenant(config: Config, name: str, url: URL | str | None = None) -> str:
    """Build a new tenant at head, as create_db.py builds a database: its schema (PostgreSQL)
    or database (MariaDB), every table of the models, the declared objects and those the
    history makes, and the stamp in the tenant's version table. PostgreSQL: one transaction.
    MariaDB commits DDL as it goes: a failed build drops the database it created. Refuses a
    tenant that exists, changing nothing. For application code (a sign-up) and
    ``python -m migrations.cli create_tenant NAME``."""
    import create_db as recipe  # beside alembic.ini, on sys.path with it

    tenant_name(name, "e.g. create_tenant acme")
    if url is not None:
        config.attributes["database_url"] = url
    url = database_url(config)
    refuse_sqlite(url.get_backend_name())
    script = recipe.require_revisions(config)
    metadata = recipe.target_metadata(config)
    where = url.render_as_string(hide_password=True)
    table = version_table(config)
    planned = recipe.plan(metadata, table)  # and the views... the history makes, as they are made

    def build(connection: Connection) -> str:
        postgresql = connection.dialect.name == "postgresql"
        quoted = connection.dialect.identifier_preparer.quote_identifier(name)
        if stands(connection, [name], table)[name] is not None:
            raise recipe.Refused(f"tenant {name!r} already exists on {where}: create_tenant changed nothing")
        config.attributes["tenant"] = name
        if postgresql:
            with connection.begin():
                connection.exec_driver_sql(f"CREATE SCHEMA {quoted}")
                fill(connection)
            return connection.execute(text(f"SELECT version_num FROM {quoted}.{table}")).scalar_one()
        try:
            connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
            connection.commit()
        except DBAPIError as error:  # made meanwhile by another run: theirs, left alone
            raise recipe.Refused(f"tenant {name!r}: {describe(error)}; create_tenant changed nothing") from None
        try:
            with connection.begin():
                fill(connection)
        except BaseException:
            if connection.in_transaction():
                connection.rollback()
            connection.exec_driver_sql(f"DROP DATABASE {quoted}")
            raise
        return connection.execute(text(f"SELECT version_num FROM {quoted}.{table}")).scalar_one()

    def fill(connection: Connection) -> None:
        with in_tenant(connection, name):
            metadata.create_all(connection, tables=recipe.tables_of(metadata), checkfirst=False)
            recipe.create_declared_objects(connection, metadata)
            recipe.create_history_objects(connection, config, script, metadata, planned, False)
        recipe.stamp_head(config, connection, script)  # through env.py: into the tenant's version table

    try:
        head = run_on_connection(url, build, cannot_connect)
    except DBAPIError as error:
        raise CommandError(f"tenant {name!r} on {where}: {describe(error)}. Nothing of it was left.") from None
    finally:
        config.attributes.pop("tenant", None)
    return f"Created tenant {name} on {where} at head {head}: {recipe.summary(planned, table)}."
