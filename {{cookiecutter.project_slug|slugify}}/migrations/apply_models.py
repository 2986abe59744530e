"""The models applied to a database directly, with no revision written (the living cookbook's
"Run Alembic operation objects directly, as in from autogenerate")::

    python -m migrations.cli apply_models     # the database of $DATABASE_URL, else alembic.ini's

Autogenerate compares the database with the models (as ``alembic check`` does, with the same
settings and hooks), and each of its operations is run through Alembic's ``Operations``
(batch mode on SQLite, which can ALTER little). For a database the history does not manage,
such as a prototype or a scratch copy a test builds on: it refuses one with a version row
(``alembic revision --autogenerate`` is the way there), and it never loses data: when any
operation would drop something or change a column's type, it names them and applies nothing.
The operations run in one transaction (MariaDB commits each DDL statement: there, one that
fails leaves the ones before it applied). It says what it did, one operation per line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from alembic.autogenerate import produce_migrations
from alembic.config import Config
from alembic.operations import Operations
from alembic.operations.ops import (
    AddColumnOp,
    AlterColumnOp,
    CreateForeignKeyOp,
    CreateIndexOp,
    CreateUniqueConstraintOp,
    DropIndexOp,
    MigrateOperation,
    ModifyTableOps,
    UpgradeOps,
)
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import Connection, inspect
from sqlalchemy.exc import DBAPIError

import migrations.replaceable  # noqa: F401  and their operations run
from migrations.autogenerate_options import autogenerate_options
from migrations.declared import in_dependency_order
from migrations.environments import version_table
from migrations.failures import cannot_connect, describe
from migrations.settings import database_url, env_hooks, run_on_connection, sqlite_legacy_rename, target_metadata
from migrations.tenants import refuse_tenant


def apply_models(config: Config, url: str | None = None) -> list[str]:
    """Apply the models' differences to the database (``url``, else the project's); return
    what was done, one operation per item. A CommandError, nothing applied, when the history
    manages that database or an operation would lose data."""
    refuse_tenant(config, "apply_models")
    if url is not None:
        config.attributes["database_url"] = url
    metadata = target_metadata(config)
    hooks = env_hooks(config)
    ours = autogenerate_options(config).include_object
    theirs = hooks.get("include_object")
    options = {
        **{name: value for name, value in hooks.items() if name.startswith(("include_", "compare_"))},
        "target_metadata": metadata,
        "include_object": (lambda *args: theirs(*args) and ours(*args)) if theirs else ours,
        "version_table": version_table(config),  # this environment's (migrations/environments.py)
        "version_table_schema": hooks.get("version_table_schema"),
    }

    def apply(connection: Connection) -> list[str]:
        with connection.begin():
            context = MigrationContext.configure(connection, opts=options)
            heads = context.get_current_heads()
            if heads:
                raise CommandError(
                    f"the database is at revision {', '.join(heads)}: the history manages it. Write a revision "
                    "instead (alembic revision --autogenerate), or apply the models to a database of their own."
                )
            upgrade_ops = produce_migrations(context, metadata).upgrade_ops
            assert upgrade_ops is not None
            losing = [described(op) for op in flattened(upgrade_ops) if loses_data(op)]
            if losing:
                raise CommandError(
                    f"{len(losing)} of the models' differences would drop or change what the database holds "
                    f"({'; '.join(losing)}): nothing was applied. Write a revision for them."
                )
            in_dependency_order(upgrade_ops)  # views after their tables, as env.py writes them
            with sqlite_legacy_rename(connection):  # batch mode beside views, as env.py runs it
                invoke(Operations(context), upgrade_ops, batch=connection.dialect.name == "sqlite")
            return [described(op) for op in flattened(upgrade_ops)]

    try:
        return run_on_connection(database_url(config), apply, cannot_connect)
    except DBAPIError as error:  # comparing (a view the database cannot read...): one line
        raise CommandError(f"applying the models failed: {describe(error)}. Nothing was applied.") from error


def invoke(operations: Operations, upgrade_ops: UpgradeOps, batch: bool) -> None:
    """The cookbook's traversal: each operation run in order, a table's in batch mode when
    asked and needed (SQLite adds columns and indexes in place; batch mode would build the
    table's indexes again under its temporary name, where a naming convention names them).
    A database error: one line naming the operation."""
    stack: list[Any] = [upgrade_ops]
    while stack:
        element = stack.pop(0)
        try:
            if batch and isinstance(element, ModifyTableOps) and any(needs_batch(op) for op in element.ops):
                refuse_to_lose_triggers(operations, element.table_name)
                with operations.batch_alter_table(element.table_name, schema=element.schema) as batch_operations:
                    for table_element in element.ops:
                        if needs_batch(table_element):
                            batch_operations.invoke(table_element)
                stack[:0] = [op for op in element.ops if not needs_batch(op)]
            elif hasattr(element, "ops"):
                stack[:0] = element.ops
            elif not made_with_its_column(operations, element):
                operations.invoke(element)
        except (DBAPIError, ValueError, NotImplementedError) as error:  # batch mode: "Constraint must have a name"
            what = ", ".join(described(op) for op in flattened(element))
            transactional = operations.get_context().impl.transactional_ddl
            left = "Nothing was applied." if transactional else "The operations before it stay applied."
            raise CommandError(f"applying the models failed at {what}: {describe(error)}. {left}") from error


def made_with_its_column(operations: Operations, op: MigrateOperation) -> bool:
    """Whether the index or constraint of ``op`` is there already: an added column that is
    the models' own (``index=True``, ``unique=True``, a ForeignKey) brings it along, where a
    revision's rendered column would not."""
    if not isinstance(op, (CreateIndexOp, CreateUniqueConstraintOp, CreateForeignKeyOp)):
        return False
    inspector = inspect(operations.get_bind())
    table, schema = op.source_table if isinstance(op, CreateForeignKeyOp) else op.table_name, op.schema
    if isinstance(op, CreateIndexOp):
        columns = [str(column) for column in op.columns]
        found = inspector.get_indexes(table, schema=schema)
        return any(index["name"] == op.index_name or index["column_names"] == columns for index in found)
    if isinstance(op, CreateUniqueConstraintOp):
        found = inspector.get_unique_constraints(table, schema=schema) + inspector.get_indexes(table, schema=schema)
        return any(item["column_names"] == list(op.columns) for item in found if item.get("unique", True))
    keys = inspector.get_foreign_keys(table, schema=schema)
    return any(
        key["constrained_columns"] == list(op.local_cols) and key["referred_table"] == op.referent_table for key in keys
    )


def refuse_to_lose_triggers(operations: Operations, table: str) -> None:
    """SQLite's batch mode rebuilds the table, and the triggers on it go with the old one."""
    found = operations.get_bind().exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)
    )
    names = [row[0] for row in found]
    if names:
        raise CommandError(
            f"changing {table} on SQLite rebuilds it, which would drop its triggers ({', '.join(names)}): "
            "nothing was applied. Write a revision for it."
        )


def needs_batch(op: MigrateOperation) -> bool:
    """What SQLite cannot do to a table in place: alter a column, add or drop a constraint."""
    return not isinstance(op, (AddColumnOp, CreateIndexOp, DropIndexOp))


def flattened(element: Any) -> Iterator[MigrateOperation]:
    """Every operation under ``element``, in the order ``invoke`` runs them."""
    if hasattr(element, "ops"):
        for item in element.ops:
            yield from flattened(item)
    else:
        yield element


def loses_data(op: MigrateOperation) -> bool:
    """A drop of anything (a table, a column, an index, a constraint, a view...), or a change
    of a column's type."""
    if isinstance(op, AlterColumnOp):
        return op.modify_type is not None
    return type(op).__name__.startswith(("Drop", "Remove"))


def described(op: MigrateOperation) -> str:
    """An operation in words, as autogenerate's diff names it: ``add_table users``."""
    try:
        diff = op.to_diff_tuple()
    except NotImplementedError:  # an operation of ours (a view...): its class and its name
        return f"{type(op).__name__} {getattr(getattr(op, 'target', None), 'name', '')}".strip()
    if isinstance(diff, list):  # several changes of one column
        diff = diff[0]
    kind, *items = diff if isinstance(diff, tuple) else (type(op).__name__, op)
    words = [getattr(item, "name", None) or (item if isinstance(item, str) else None) for item in items]
    return " ".join([kind, *(word for word in words if word)])
