"""Alembic environment for {{ cookiecutter.project_name }}: Alembic's own env.py plus the cookbook.

Each cookbook recipe is one named block below:
  recipe 2  conditional migration elements  -x data=true       (migrations/conditional.py)
  recipe 3  sharing a connection            config.attributes["connection"]
  recipe 4  replaceable objects             op.create_view ... (migrations/replaceable.py)
  recipe 5  no empty migrations             process_revision_directives
And from the living cookbook: one tenant's schema per run, -x tenant=acme (migrations/tenants.py).
Recipe 1, an up-to-date database from scratch, is create_db.py beside alembic.ini.
"""

from __future__ import annotations

from contextlib import nullcontext
from logging.config import fileConfig

from alembic import context
from alembic.operations.ops import CreateTableOp, DropIndexOp, DropTableOp, ExecuteSQLOp, ModifyTableOps
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, Enum, inspect
from sqlalchemy.exc import DBAPIError

import migrations.declared  # noqa: F401  recipe 4: autogenerate for declared views, functions...
import migrations.replaceable  # noqa: F401  recipe 4: registers op.create_view & co.
from migrations.autocommit import AutocommitInCallersTransaction, commits_during, refuse_autocommit_blocks, what_stays
from migrations.autogenerate_options import autogenerate_options
from migrations.conditional import data_enabled
from migrations.declared import in_dependency_order
from migrations.environments import version_table
from migrations.failures import cannot_connect, migration_failed
from migrations.irreversible import refuse_irreversible_downgrade
from migrations.lock import ddl_lock_timeout, ddl_timeout, lock_timeout, migration_lock
from migrations.render import render_item
from migrations.settings import (
    CHAINED_HOOKS,
    database_url,
    env_hooks,
    is_async_connectable,
    run_on_connection,
    sqlite_legacy_rename,
    transactional_sqlite,
)
from migrations.settings import target_metadata as import_target_metadata
from migrations.tenants import in_tenant, lock_name, offline_preamble, refuse_sqlite, tenant

config = context.config

# Logging from alembic.ini. An application calling Alembic keeps its own loggers, and
# may skip this altogether with config.attributes["configure_logger"] = False.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# Recipe 2: a bad `-x data=...` is an error here, first: before the models are imported,
# a connection is made or any DDL runs.
data_enabled()

TENANT = tenant(config)  # -x tenant=acme: one tenant's schema (migrations/tenants.py)

# The models' MetaData, for autogenerate: `target_metadata = module:attribute` in alembic.ini.
target_metadata = import_target_metadata(config)

# The application's own context.configure() options (include_object, include_name, ...), from
# the module named by `env_hooks = module` in alembic.ini: see migrations/settings.py. Its
# render_item and process_revision_directives run first, then ours.
app_hooks = env_hooks(config)

# The living cookbook's autogenerate recipes, each a setting (migrations/autogenerate_options.py).
autogenerate_settings = autogenerate_options(config)


# Recipe 5: no empty migrations. An autogenerate that finds nothing writes no file, from
# the CLI and from command.revision() (where config.cmd_opts is None). `alembic check`
# runs through here too and needs its directive: only `revision` is acted on (should
# Alembic rename its command's inner function, an empty file is written, nothing breaks).
def process_revision_directives(migration_context, revision, directives):
    opts = migration_context.opts
    autogenerate = opts["revision_context"].command_args["autogenerate"]
    writing_a_revision = getattr(opts.get("fn"), "__qualname__", "").startswith("revision.")
    if autogenerate and writing_a_revision:
        autogenerate_settings.rewrite(migration_context, revision, directives)  # column order, IF EXISTS
        script = directives[0]
        if all(upgrade_ops.is_empty() for upgrade_ops in script.upgrade_ops_list):
            directives[:] = []
            config.print_stdout("No schema changes detected: no revision file written.")
            return
        for operations in [*script.upgrade_ops_list, *script.downgrade_ops_list]:
            in_dependency_order(operations)  # views after their tables, dropped before them
        for downgrade_ops in script.downgrade_ops_list:
            drop_tables_with_their_indexes(downgrade_ops)
        for upgrade_ops, downgrade_ops in zip(script.upgrade_ops_list, script.downgrade_ops_list, strict=True):
            drop_enum_types_with_their_tables(migration_context, upgrade_ops, downgrade_ops)


def drop_tables_with_their_indexes(downgrade_ops) -> None:
    """Autogenerate writes op.drop_index() before op.drop_table(), and MariaDB refuses to drop
    an index that a foreign key of the table needs: the downgrade fails. Dropping a table
    drops its indexes on every database, so those drop_index() calls are left out."""
    dropped = {(op.schema, op.table_name) for op in downgrade_ops.ops if isinstance(op, DropTableOp)}

    def needed(op) -> bool:
        return not (isinstance(op, DropIndexOp) and (op.schema, op.table_name) in dropped)

    for op in downgrade_ops.ops:
        if isinstance(op, ModifyTableOps) and (op.schema, op.table_name) in dropped:
            op.ops = [inner for inner in op.ops if needed(inner)]
    downgrade_ops.ops = [
        op for op in downgrade_ops.ops if needed(op) and not (isinstance(op, ModifyTableOps) and not op.ops)
    ]


def drop_enum_types_with_their_tables(migration_context, upgrade_ops, downgrade_ops) -> None:
    """PostgreSQL: op.create_table() creates the ENUM types of its columns that do not exist
    yet, and op.drop_table() leaves them: the downgrade would leave a type behind, and
    upgrading again would fail ("type ... already exists"). The downgrade drops the types its
    upgrade creates, after their tables."""
    dialect = migration_context.dialect
    if dialect.name != "postgresql" or migration_context.connection is None:
        return
    found = inspect(migration_context.connection).get_enums(schema="*")
    existing = {(enum["schema"], enum["name"]) for enum in found}
    created: dict[tuple[str, str], Enum] = {}
    for op in upgrade_ops.ops:
        if not isinstance(op, CreateTableOp):
            continue
        for column in op.columns:
            kind = getattr(column, "type", None)
            if isinstance(kind, Enum) and kind.native_enum and kind.name and getattr(kind, "create_type", True):
                key = (kind.schema or op.schema or dialect.default_schema_name, kind.name)
                if key not in existing:
                    created.setdefault(key, kind)
    preparer = dialect.identifier_preparer
    downgrade_ops.ops.extend(ExecuteSQLOp(f"DROP TYPE {preparer.format_type(kind)}") for kind in created.values())


def configure_options(dialect_name: str, transactional_ddl: bool | None = None) -> dict:
    ours = {
        "target_metadata": target_metadata,
        "process_revision_directives": process_revision_directives,
        # Revisions import the modules of the types they render (migrations/render.py).
        "render_item": render_item,
        # Tables mapped onto views, and the autogenerate settings (migrations/autogenerate_options.py).
        "include_object": autogenerate_settings.include_object,
        # SQLite can ALTER little: batch mode rebuilds the table instead.
        "render_as_batch": dialect_name == "sqlite",
        # PostgreSQL, and SQLite through our engine: the whole run is one transaction.
        # MariaDB/MySQL cannot roll DDL back: each migration commits with its version row,
        # so a failure leaves a version that is true.
        "transactional_ddl": transactional_ddl,
        "transaction_per_migration": dialect_name in ("mysql", "mariadb"),
        # This environment's version table (several histories: migrations/environments.py).
        "version_table": version_table(config),
    }
    both = {name: chained(name, ours[name]) for name in CHAINED_HOOKS if name in app_hooks}
    tenants = {"version_table_schema": TENANT} if TENANT else {}  # the version table lives with the tenant
    return {**ours, **app_hooks, **both, **tenants}


def chained(name: str, ours):
    """The app's hook, then ours: a render_item of theirs that renders the item wins."""
    theirs = app_hooks[name]

    def both(*args):
        if name == "render_item":
            rendered = theirs(*args)
            return rendered if rendered is not False else ours(*args)
        if name == "include_object":  # left out if either leaves it out
            return theirs(*args) and ours(*args)
        theirs(*args)
        return ours(*args)

    return both


def run_migrations_offline() -> None:
    """`alembic upgrade --sql`: write the SQL out instead of running it."""
    url = database_url(config)
    if TENANT:
        refuse_sqlite(url.get_backend_name())
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **configure_options(url.get_backend_name()),
    )
    refuse_irreversible_downgrade(context.get_context())
    with context.begin_transaction():
        if TENANT:
            context.execute(offline_preamble(url.get_backend_name(), TENANT))
        context.run_migrations()


# Recipe 3: sharing a connection. A Connection in config.attributes["connection"] is used
# as it is: if it is in a transaction, the caller commits or rolls it back. Beware: a
# Connection that has run any query is in one (SQLAlchemy 2.x autobegins), so commit it
# yourself, or hand over a fresh one. An Engine there (pytest-alembic passes one) is
# connected to. An AsyncConnection or AsyncEngine works the same, called through the
# caller's run_sync (see README). Otherwise we make our own, async for an async URL.
def run_migrations_online() -> None:
    shared = config.attributes.get("connection")
    if shared is not None and not (isinstance(shared, (Connection, Engine)) or is_async_connectable(shared)):
        raise CommandError(  # no fallback
            f'config.attributes["connection"] is a {type(shared).__name__}: give a Connection or an Engine.'
        )
    if TENANT:  # before connecting: SQLite would make its file
        refuse_sqlite(shared.dialect.name if shared is not None else database_url(config).get_backend_name())
    if isinstance(shared, Connection):
        run_migrations(shared)
        return
    run_on_connection(shared if shared is not None else database_url(config), run_migrations, cannot_connect)


def run_migrations(connection: Connection) -> None:
    transactional = transactional_sqlite(connection) if connection.dialect.name == "sqlite" else None
    with sqlite_legacy_rename(connection), in_tenant(connection, TENANT) if TENANT else nullcontext():
        run_migrations_locked(connection, transactional)


def run_migrations_locked(connection: Connection, transactional: bool | None) -> None:
    # Concurrent runs (several replicas deploying) wait here: see migrations/lock.py.
    lock = lock_name(connection.dialect.name, TENANT, version_table(config))  # a tenant's own
    with migration_lock(connection, lock_timeout(config), lock), ddl_lock_timeout(connection, ddl_timeout(config)):
        callers_transaction = connection.in_transaction()
        context.configure(connection=connection, **configure_options(connection.dialect.name, transactional))
        refuse_irreversible_downgrade(context.get_context())  # before any DDL
        if callers_transaction:  # a revision's autocommit_block() would commit it: see migrations/autocommit.py
            refuse_autocommit_blocks(context.get_context())
        one_transaction = connection.dialect.name == "postgresql" or bool(transactional)
        with commits_during(connection) as commits:
            try:
                with context.begin_transaction():
                    context.run_migrations()
            except (DBAPIError, AutocommitInCallersTransaction) as error:  # one line naming the revision
                stays = what_stays(context.get_context(), commits) if one_transaction else None
                raise migration_failed(error, one_transaction, stays, callers_transaction) from error


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
