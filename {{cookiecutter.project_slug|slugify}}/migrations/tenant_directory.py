"""Which tenants there are, and where each stands (migrations/all_tenants.py).

``--tenants`` (or ``tenants =`` in the environment's section of alembic.ini):

- ``schemas:PATTERN``: the schemas (PostgreSQL) or databases (MariaDB) whose name matches
  the SQL ``LIKE`` pattern, e.g. ``schemas:tenant_%``;
- ``query:SELECT ...``: a query on the configured database; its first column is the tenant,
  an optional second one the URL of the server that holds it (a directory of tenants spread
  over several servers);
- ``module:function``: a function of yours, called with the Config, returning tenant names,
  or (name, URL) pairs;
- ``acme,globex``: these tenants.

``stands()`` reads where many tenants stand in a few queries per server.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Connection, bindparam, make_url, text
from sqlalchemy.exc import DBAPIError

from migrations.failures import cannot_connect, describe
from migrations.settings import database_url, parse_url, run_on_connection
from migrations.tenants import refuse_sqlite, tenant_name

BATCH = 250  # tenants read per query


@dataclass(frozen=True)
class Tenant:
    name: str
    url: str  # with its password: never printed (see where())

    def where(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)


# --- Which tenants ------------------------------------------------------------------------


def tenant_spec(config: Config, given: str | None) -> str:
    spec = given or config.get_alembic_option("tenants")
    if not spec:
        raise CommandError(
            "which tenants? give --tenants 'schemas:tenant_%' (a name pattern), 'query:SELECT name FROM tenants', "
            "'module:function' or 'acme,globex', or set tenants = ... in alembic.ini"
        )
    return spec.strip()


def list_tenants(config: Config, spec: str) -> list[Tenant]:
    """The tenants ``spec`` names (see the module's docstring), each with its server's URL."""
    url = database_url(config)
    main = url.render_as_string(hide_password=False)
    kind, _, rest = spec.partition(":")
    if kind == "schemas" and rest:
        found: Iterable = run_on_connection(url, lambda connection: schemas_like(connection, rest), cannot_connect)
    elif kind == "query" and rest:
        found = run_on_connection(url, lambda connection: rows_of(connection, rest), cannot_connect)
    elif rest and ":" not in rest and "," not in spec:  # module:function
        found = function_named(spec)(config)
    elif not rest:
        found = [name.strip() for name in spec.split(",") if name.strip()]
    else:
        raise CommandError(f"--tenants {spec!r}: expected schemas:PATTERN, query:SQL, module:function or a,b,c")
    tenants: dict[str, Tenant] = {}
    for item in found:
        name, server = (item, main) if isinstance(item, str) else (item[0], item[1] or main)
        tenant_name(name, f"listed by --tenants {kind}")
        server_url = parse_url(str(server), f"the URL of tenant {name}") if server is not main else url
        refuse_sqlite(server_url.get_backend_name())
        tenant = Tenant(name, server_url.render_as_string(hide_password=False))
        if name in tenants and tenants[name] != tenant:
            raise CommandError(f"tenant {name!r} is listed twice, on two servers")
        tenants[name] = tenant
    return sorted(tenants.values(), key=lambda tenant: (tenant.url, tenant.name))


def schemas_like(connection: Connection, pattern: str) -> list[str]:
    refuse_sqlite(connection.dialect.name)
    if connection.dialect.name == "postgresql":
        sql = "SELECT nspname FROM pg_namespace WHERE nspname LIKE :pattern ORDER BY 1"
    else:
        sql = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE :pattern ORDER BY 1"
    return list(connection.execute(text(sql), {"pattern": pattern}).scalars())


def rows_of(connection: Connection, sql: str) -> list[tuple]:
    try:
        return [tuple(row) for row in connection.execute(text(sql))]
    except DBAPIError as error:
        raise CommandError(f"--tenants query failed: {describe(error)}") from None


def function_named(spec: str) -> Callable[[Config], Iterable]:
    module_name, _, attribute = spec.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise CommandError(f"--tenants {spec!r}: {error}") from None
    if not callable(found):
        raise CommandError(f"--tenants {spec!r} is not a function")
    return found


# --- Where each tenant stands, in a few queries per server ----------------------------------


def stands(connection: Connection, names: list[str], table: str) -> dict[str, tuple[str, ...] | None]:
    """Each tenant's versions (``()``: none yet), or None for a tenant with no schema."""
    postgresql = connection.dialect.name == "postgresql"
    quote = connection.dialect.identifier_preparer.quote_identifier
    result: dict[str, tuple[str, ...] | None] = {}
    for start in range(0, len(names), BATCH):
        batch = names[start : start + BATCH]
        if postgresql:
            schemas = "SELECT nspname FROM pg_namespace WHERE nspname IN :names"
            tables = (
                "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relname = :table AND c.relkind IN ('r', 'p') AND n.nspname IN :names"
            )
        else:
            schemas = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN :names"
            tables = (
                "SELECT TABLE_SCHEMA FROM information_schema.TABLES "
                "WHERE TABLE_NAME = :table AND TABLE_SCHEMA IN :names"
            )
        expanding = [bindparam("names", expanding=True)]
        existing = set(connection.execute(text(schemas).bindparams(*expanding), {"names": batch}).scalars())
        with_table = sorted(
            connection.execute(text(tables).bindparams(*expanding), {"names": batch, "table": table}).scalars()
        )
        found: dict[str, list[str]] = defaultdict(list)
        if with_table:  # names are tenant names (NAME): quoting is for the reserved ones
            union = " UNION ALL ".join(
                f"SELECT '{name}', version_num FROM {quote(name)}.{quote(table)}" for name in with_table
            )
            for name, version in connection.execute(text(union)):
                found[name].append(version)
        for name in batch:
            result[name] = tuple(sorted(found[name])) if name in existing else None
    if connection.in_transaction():
        connection.rollback()
    return result
