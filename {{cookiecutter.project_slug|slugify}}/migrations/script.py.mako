"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.conditional import data_enabled
${imports if imports else ""}
# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}
# If downgrade() cannot undo upgrade(), say why here: `alembic downgrade` past this revision
# then stops before running anything, and the migration suite does not downgrade it.
irreversible: str | None = None


def upgrade() -> None:
    schema_upgrades()
    if data_enabled():
        data_upgrades()


def downgrade() -> None:
    if data_enabled():
        data_downgrades()
    schema_downgrades()


def schema_upgrades() -> None:
    """Schema upgrade migrations go here."""
    ${upgrades if upgrades else "pass"}


def schema_downgrades() -> None:
    """Schema downgrade migrations go here."""
    ${downgrades if downgrades else "pass"}


# Data steps change rows, never the schema: without them (the default, and how create_db.py
# and the migration suite's "models == head" see it) the schema steps alone must reach the
# models. A column made NOT NULL after a backfill: add it nullable in schema_upgrades(), fill
# it here, and make it NOT NULL in the next revision's schema_upgrades(). On a big PostgreSQL
# table, fill it inside `with op.get_context().autocommit_block():`, so that the ALTER's lock is
# not held while the rows are written (python -m migrations.cli lint: backfill-under-lock).
def data_upgrades() -> None:
    """Optional data upgrade migrations go here; they run with `alembic -x data=true`."""
    pass


def data_downgrades() -> None:
    """Optional data downgrade migrations go here; they run with `alembic -x data=true`."""
    pass
