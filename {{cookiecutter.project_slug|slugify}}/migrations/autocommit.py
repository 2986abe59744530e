"""Revisions that commit: ``op.get_context().autocommit_block()``.

The standard way to build an index on a live PostgreSQL table is outside a transaction::

    with op.get_context().autocommit_block():
        op.create_index("ix_order_customer_id", "order", ["customer_id"], postgresql_concurrently=True)

Alembic commits the run's transaction before the block and begins a new one after it, so
a run with such a revision is no longer one transaction: what came before the block stays
applied whatever fails after it (on SQLite the write lock, the migration lock there, is let
go for that moment too). env.py uses this module to say so truthfully:

- ``commits_during(connection)`` counts the commits a run makes, so that a failed run's
  message says what stays applied, not "Nothing of this run was applied";
- ``refuse_autocommit_blocks(context)``: inside a caller's transaction (recipe 3) a block
  would commit the caller's work behind its back (Alembic stops it with a bare
  AssertionError): one line naming the revision instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import Connection, event

from migrations.failures import is_revision_module


class AutocommitInCallersTransaction(CommandError):
    """A revision's autocommit_block() inside a transaction the caller owns."""


@contextmanager
def commits_during(connection: Connection) -> Iterator[list[str | None]]:
    """A list that gets an item for each commit on ``connection`` inside the block: the
    revision whose code committed (its autocommit_block()), or None."""
    commits: list[str | None] = []

    def count(_connection: Connection) -> None:
        commits.append(running_revision())

    event.listen(connection, "commit", count)
    try:
        yield commits
    finally:
        event.remove(connection, "commit", count)


def refuse_autocommit_blocks(migration_context: MigrationContext) -> None:
    """Call when the run is inside the caller's transaction: a revision's autocommit_block()
    then raises AutocommitInCallersTransaction (env.py names the revision)."""

    @contextmanager
    def autocommit_block() -> Iterator[None]:
        raise AutocommitInCallersTransaction(
            "it uses autocommit_block(), which commits, inside the transaction of the connection given in "
            'config.attributes["connection"]: give a connection outside a transaction (the run then '
            "commits what comes before the block), or run this revision with the alembic command"
        )
        yield  # never reached: a context manager all the same

    migration_context.autocommit_block = autocommit_block  # this run's context only


def running_revision() -> str | None:
    """The revision whose code is running now (the innermost revision module on the stack)."""
    frame = sys._getframe(1)
    while frame is not None:
        if is_revision_module(frame.f_globals):
            return str(frame.f_globals["revision"])
        frame = frame.f_back
    return None


def what_stays(migration_context: MigrationContext, commits: list[str | None]) -> str | None:
    """After a failed run that was one transaction until a revision committed it: what stays
    applied, in words (None when nothing was committed). Reads the version table, and ends
    the read's own transaction again."""
    if not commits:
        return None
    connection = migration_context.connection
    try:
        heads = migration_context.get_current_heads()
    finally:
        if connection is not None and connection.in_transaction():
            connection.rollback()
    at = ", ".join(sorted(heads)) or "no revision"
    committer = next((revision for revision in reversed(commits) if revision), None)
    who = f"revision {committer}" if committer else "a revision"
    return (
        f"Not all of it was rolled back: {who} committed this run in its autocommit_block(): the database is at "
        f"{at} (alembic current), with what {who} did up to the end of that block applied too; the rest was "
        "rolled back."
    )
