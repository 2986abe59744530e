"""Irreversible revisions: a downgrade that cannot undo its upgrade says so, as in Django.

A revision declares it with a module-level reason (script.py.mako writes the line)::

    irreversible = "merges the two name columns: the split cannot be recovered"

``alembic downgrade`` past such a revision stops before running anything, with one line
naming it (env.py calls ``refuse_irreversible_downgrade``), and the migration suite
upgrades it without downgrading it, and says so.
"""

from __future__ import annotations

from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import Script
from alembic.util import CommandError


def irreversible_reason(revision: Script) -> str | None:
    """Why this revision cannot be downgraded, or None when it can."""
    reason = getattr(revision.module, "irreversible", None)
    return str(reason) if reason else None


def refuse_irreversible_downgrade(migration_context: MigrationContext) -> None:
    """Before an ``alembic downgrade`` runs: refuse when it would pass an irreversible revision.

    The command's plan is its own step function (Alembic passes it as ``fn``; it only works
    out the steps), asked once more here before any of them runs. Offline (``--sql``) too.
    """
    plan = migration_context.opts.get("fn")
    # alembic.command.downgrade's step function is named so (pytest-alembic's too)
    if getattr(plan, "__name__", "") != "downgrade":
        return
    connection = None if migration_context.as_sql else migration_context.connection
    outside = connection is not None and not connection.in_transaction()
    heads = migration_context.get_current_heads()
    if outside and connection.in_transaction():
        connection.rollback()  # end the read's autobegun transaction: Alembic begins its own
    for step in plan(heads, migration_context):
        revision = getattr(step, "revision", None)
        reason = irreversible_reason(revision) if isinstance(revision, Script) else None
        if reason:
            raise CommandError(
                f"revision {revision.revision} ({Path(revision.path).name}) is irreversible: {reason}. "
                "Nothing was downgraded; downgrade to it or a later revision instead."
            )
