"""update views/sp

Revision ID: 199028bf9856
Revises: 191a2d20b025
Create Date: 2015-07-27 16:26:31.344504

"""

from collections.abc import Sequence

from alembic import op

from migrations.conditional import data_enabled
from migrations.replaceable import ReplaceableObject

# revision identifiers, used by Alembic.
revision: str = "199028bf9856"
down_revision: str | Sequence[str] | None = "191a2d20b025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

customer_view = ReplaceableObject(
    "customer_view",
    "SELECT name, order_count, email FROM customer WHERE order_count > 0",
)
{%- if cookiecutter.database == "postgresql" %}
add_customer_sp = ReplaceableObject(
    "add_customer_sp(in_name varchar, in_order_count integer, in_email varchar)",
    """
    RETURNS integer AS $$
    DECLARE
        new_id integer;
    BEGIN
        INSERT INTO customer (name, order_count, email)
        VALUES (in_name, in_order_count, in_email)
        RETURNING id INTO new_id;
        RETURN new_id;
    END;
    $$ LANGUAGE plpgsql
    """,
)
{%- elif cookiecutter.database == "mysql" %}
add_customer_sp = ReplaceableObject(
    "add_customer_sp",
    """
    (in_name VARCHAR(100), in_order_count INTEGER, in_email VARCHAR(255)) RETURNS INTEGER
    MODIFIES SQL DATA
    BEGIN
        INSERT INTO customer (name, order_count, email)
        VALUES (in_name, in_order_count, in_email);
        RETURN LAST_INSERT_ID();
    END
    """,
)
{%- endif %}


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
    op.replace_view(customer_view, replaces="28af9800143f.customer_view")
{%- if cookiecutter.database != "sqlite" %}
    # deploy-ok: change-signature -- nothing calls add_customer_sp in the example project
    op.replace_sp(add_customer_sp, replaces="28af9800143f.add_customer_sp")
{%- endif %}


def schema_downgrades() -> None:
    """Schema downgrade migrations go here."""
    op.replace_view(customer_view, replace_with="28af9800143f.customer_view")
{%- if cookiecutter.database != "sqlite" %}
    op.replace_sp(add_customer_sp, replace_with="28af9800143f.add_customer_sp")
{%- endif %}


def data_upgrades() -> None:
    """Optional data upgrade migrations go here; they run with `alembic -x data=true`."""
    pass


def data_downgrades() -> None:
    """Optional data downgrade migrations go here; they run with `alembic -x data=true`."""
    pass
