"""The migration suite inside a tenant: for a history that every tenant runs (the README's
"Tenants"), ``tenant_history = true`` in its section of alembic.ini (or ``[tool.alembic]``).

Then every database the suite walks, upgrades or builds is a tenant, as in production:

- PostgreSQL: the schema ``suite_tenant`` of the test's database, every connection to that
  database working in it (``ALTER DATABASE ... SET search_path``: the schema pictures, row
  counts and autogenerate read the tenant), and each alembic run made with that tenant
  (``config.attributes["tenant"]``: the version table and the lock in it, as
  ``alembic -x tenant=...``); create_db ≡ upgrade head compares ``create_tenant()``'s build.
  A revision that names a schema (``schema="public"``, ``"acme.orders"``) then puts its tables
  outside the tenant, or fails: models ≡ head and create_db ≡ upgrade head say so.
- MariaDB: a tenant is a database, as the test's database already is: each run is made with
  that tenant (``USE``, the lock keyed on it). A revision naming another database fails there.
- SQLite has no tenants: the setting is refused in one line.
"""

from __future__ import annotations

from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import URL, Connection

from migrations.autogenerate_options import FALSE, TRUE
from migrations.testing.connections import connected

SUITE_TENANT = "suite_tenant"


def tenant_history(config: Config) -> bool:
    """Whether this environment's history is a tenant's (``tenant_history = true``)."""
    raw = (config.get_alembic_option("tenant_history") or "").strip().lower()
    if raw not in TRUE | FALSE:
        raise CommandError(f"tenant_history = {raw!r}: expected true or false.")
    return raw in TRUE


def tenant_of(url: URL) -> str:
    """The tenant a suite database is: the schema made in it, or (MariaDB) the database."""
    if url.get_backend_name() == "sqlite":
        raise CommandError("tenant_history = true: SQLite has no schemas to hold tenants; run the suite on PostgreSQL")
    return SUITE_TENANT if url.get_backend_name() == "postgresql" else url.database


def enter(url: URL, create: bool = True) -> URL:
    """Make the new database of ``url`` a tenant (PostgreSQL: create the schema, unless
    ``create`` is False as after create_tenant(), and have every connection work in it)."""
    tenant = tenant_of(url)
    if url.get_backend_name() != "postgresql":
        return url

    def into(connection: Connection) -> None:
        quote = connection.dialect.identifier_preparer.quote
        if create:
            connection.exec_driver_sql(f"CREATE SCHEMA {quote(tenant)}")
        connection.exec_driver_sql(f"ALTER DATABASE {quote(url.database)} SET search_path TO {quote(tenant)}")

    connected(url, into, isolation_level="AUTOCOMMIT")
    return url


def hint(config: Config) -> str:
    """What to add to a failure of models ≡ head or create_db ≡ upgrade head in a tenant."""
    if not tenant_history(config):
        return ""
    return (
        "\n(the suite ran in a tenant, as tenant_history = true asks: a revision that names a schema or database "
        "puts its objects outside the tenant; name none, as every tenant runs the same revisions)"
    )
