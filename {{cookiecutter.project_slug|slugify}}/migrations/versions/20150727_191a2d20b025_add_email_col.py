"""add email col

Revision ID: 191a2d20b025
Revises: 28af9800143f
Create Date: 2015-07-27 16:25:59.277326

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.conditional import data_enabled

# revision identifiers, used by Alembic.
revision: str = "191a2d20b025"
down_revision: str | Sequence[str] | None = "28af9800143f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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
    with op.batch_alter_table("customer") as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=255), nullable=True))
        # deploy-ok: add-index -- the example history's customer table is new: no live rows to wait for
        batch_op.create_index(batch_op.f("ix_customer_email"), ["email"], unique=False)


def schema_downgrades() -> None:
    """Schema downgrade migrations go here."""
    with op.batch_alter_table("customer") as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_email"))
        batch_op.drop_column("email")


def data_upgrades() -> None:
    """Optional data upgrade migrations go here; they run with `alembic -x data=true`."""
    pass


def data_downgrades() -> None:
    """Optional data downgrade migrations go here; they run with `alembic -x data=true`."""
    pass
