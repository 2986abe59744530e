"""create table

Revision ID: 3ab8b2dfb055
Revises:
Create Date: 2015-07-27 16:22:44.918507

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.conditional import data_enabled

# revision identifiers, used by Alembic.
revision: str = "3ab8b2dfb055"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

customer = sa.table(
    "customer",
    sa.column("name", sa.String),
    sa.column("order_count", sa.Integer),
)
SAMPLE_CUSTOMERS = [
    {"name": "data 1", "order_count": 1},
    {"name": "data 2", "order_count": 0},
    {"name": "data 3", "order_count": 3},
]


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
    op.create_table(
        "customer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("order_count", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer")),
    )


def schema_downgrades() -> None:
    """Schema downgrade migrations go here."""
    op.drop_table("customer")


def data_upgrades() -> None:
    """Optional data upgrade migrations go here; they run with `alembic -x data=true`."""
    op.bulk_insert(customer, SAMPLE_CUSTOMERS)


def data_downgrades() -> None:
    """Optional data downgrade migrations go here; they run with `alembic -x data=true`."""
    names = [row["name"] for row in SAMPLE_CUSTOMERS]
    op.execute(customer.delete().where(customer.c.name.in_(names)))
