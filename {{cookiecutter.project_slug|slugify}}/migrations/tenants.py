"""The living cookbook's "Rudimental Schema-Level Multi Tenancy": one history, run against
one tenant at a time.

A tenant is a PostgreSQL schema, or a MariaDB/MySQL database, on the configured server:

- on the command line: ``alembic -x tenant=acme upgrade head`` (``downgrade``, ``current``,
  ``check``, ``revision --autogenerate``, ``--sql`` alike);
- from Python: ``config.attributes["tenant"] = "acme"`` before ``command.upgrade(config, ...)``.

For the run, the connection works in the tenant (PostgreSQL: ``search_path``; MariaDB:
``USE``), reflection takes it for the default schema (the cookbook's workaround), and the
version table lives in it; afterwards the connection gets back what it had (a shared
connection is the caller's). Each tenant has its own migration lock: two runs on one tenant
wait for each other, runs on different tenants do not. The tenant must exist (an unknown
one is a one-line error): ``CREATE SCHEMA acme`` (PostgreSQL) or ``CREATE DATABASE acme``
(MariaDB), then ``alembic -x tenant=acme upgrade head`` (or ``python -m migrations.cli
create_tenant acme``, which builds it at head). SQLite has no schemas: give each
tenant a database file of its own, as its URL.

As the recipe says, the models' tables name no schema, and ``include_schemas`` stays off;
autogenerate against one tenant, then upgrade every tenant. For the run, the Engine's dialect
takes the tenant for its default schema: in one process, migrate one tenant at a time per
Engine (a shared connection's Engine included). On MariaDB, a shared connection goes back to
its URL's database afterwards; one with no database in its URL stays in the tenant's.
create_db.py, ``at_head`` and ``apply_models`` take no tenant: they refuse one. Every tenant
from one command: migrations/all_tenants.py; a new tenant at head: migrations/new_tenant.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from alembic import context
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

# Lower case only: PostgreSQL folds unquoted names, and MariaDB's database names may or may
# not be case-sensitive: "Acme" and "acme" must never be two tenants.
NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def tenant(config: Config) -> str | None:
    """This run's tenant (``-x tenant=...``, else ``config.attributes["tenant"]``), or None."""
    option = context.get_x_argument(as_dictionary=True).get("tenant")
    value = option if option is not None else config.attributes.get("tenant")
    return None if value is None else tenant_name(value, "e.g. -x tenant=acme")


def tenant_name(value: object, example: str = "e.g. acme") -> str:
    """``value`` if it is a tenant name, else a one-line CommandError: never spliced into SQL."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        shown = value if isinstance(value, str) and len(value) <= 70 else f"{str(value)[:60]}..."
        raise CommandError(
            f"tenant {shown!r} is not a tenant name: lower-case letters, digits and _, "
            f"at most 63, not starting with a digit ({example})."
        )
    return value


def requested(config: Config) -> bool:
    """Whether a tenant was asked for (``-x tenant=...`` or the attribute), outside env.py."""
    x = getattr(config.cmd_opts, "x", None) or []
    return config.attributes.get("tenant") is not None or any(item.startswith("tenant=") for item in x)


def refuse_tenant(config: Config, command: str) -> None:
    """The commands that do not work in a tenant yet say so, instead of using the default schema."""
    if requested(config):
        raise CommandError(
            f"{command} does not take a tenant yet: it would work in the URL's own schema or database. "
            "For a new tenant: create its schema, then `alembic -x tenant=NAME upgrade head`."
        )


def lock_name(dialect_name: str, name: str | None, version_table: str) -> str:
    """What the migration lock is keyed on (migrations/lock.py), beside the database: on
    PostgreSQL the tenant's schema; on MariaDB the lock takes the current database, which
    is the tenant's (so a run on ``.../acme`` and one with ``-x tenant=acme`` wait for each other)."""
    return f"{name}.{version_table}" if name and dialect_name == "postgresql" else version_table


def offline_preamble(dialect_name: str, name: str) -> str:
    """``--sql``: the statement that makes the script work in the tenant."""
    quoted = f'"{name}"' if dialect_name == "postgresql" else f"`{name}`"  # NAME: no quote in it
    return f"SET search_path TO {quoted}" if dialect_name == "postgresql" else f"USE {quoted}"


def refuse_sqlite(dialect_name: str) -> None:
    if dialect_name == "sqlite":
        raise CommandError(
            "-x tenant: SQLite has no schemas to hold tenants; give each tenant a database file "
            "of its own (DATABASE_URL=sqlite:///tenants/acme.db) instead."
        )


@contextmanager
def in_tenant(connection: Connection, name: str) -> Iterator[None]:
    """Work in the tenant on ``connection`` for the block, then put the connection back."""
    dialect = connection.dialect
    refuse_sqlite(dialect.name)
    external = connection.in_transaction()  # the caller's: it commits, not us
    postgresql = dialect.name == "postgresql"
    if postgresql:
        found = "SELECT count(*) FROM pg_namespace WHERE nspname = :name"
        before = connection.execute(text("SELECT current_setting('search_path')")).scalar_one()
    else:
        found = "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :name"
        before = connection.execute(text("SELECT DATABASE()")).scalar_one()
    exists = connection.execute(text(found), {"name": name}).scalar_one()
    if not external:
        connection.commit()
    if not exists:
        where = "schema of that name in this database" if postgresql else "database of that name on this server"
        make = "CREATE SCHEMA" if postgresql else "CREATE DATABASE"
        raise CommandError(f"tenant {name!r}: no {where} ({make} {name} first).")
    quoted = dialect.identifier_preparer.quote_identifier(name)
    switch(connection, f"SET search_path TO {quoted}" if postgresql else f"USE {quoted}", external)
    default_schema = dialect.default_schema_name
    dialect.default_schema_name = name  # reflection without a schema: the tenant's (the cookbook's workaround)
    try:
        yield
    except BaseException:
        with suppress(DBAPIError):  # a failed transaction refuses statements until it ends
            put_back(connection, before, external)
        raise
    else:
        put_back(connection, before, external)
    finally:
        dialect.default_schema_name = default_schema


def switch(connection: Connection, statement: str, external: bool) -> None:
    connection.exec_driver_sql(statement)
    if not external:
        connection.commit()


def put_back(connection: Connection, before: str | None, external: bool) -> None:
    if connection.closed or connection.invalidated:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT set_config('search_path', :path, false)"), {"path": before})
        if not external:
            connection.commit()
    elif before is not None:  # a URL without a database: nothing to go back to
        switch(connection, f"USE {connection.dialect.identifier_preparer.quote_identifier(before)}", external)
