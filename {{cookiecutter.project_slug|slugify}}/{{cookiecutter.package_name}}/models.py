"""The models: SQLAlchemy 2.x typed mappings on a MetaData with a naming convention.

alembic.ini names this MetaData (``target_metadata``): autogenerate compares the
database with it, and create_db.py creates a fresh database from it. Its views and
functions are declared here too, below the tables. The naming convention gives every
constraint and index a predictable name, so later migrations can drop or alter them
by name on every database.
"""

from __future__ import annotations

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from migrations.declared import declare_replaceable_objects
from migrations.replaceable import {% if cookiecutter.database != "sqlite" %}Function, {% endif %}View

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = declare_replaceable_objects(MetaData(naming_convention=NAMING_CONVENTION))


class Base(DeclarativeBase):
    metadata = metadata


class Customer(Base):
    """The cookbook's customer table (migrations/versions holds its history)."""

    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))
    order_count: Mapped[int | None]
    email: Mapped[str | None] = mapped_column(String(255), index=True)


# Views and functions, declared like tables: create_db.py creates them, and
# `alembic revision --autogenerate` writes create/replace/drop operations when they change.
customer_view = View(
    "customer_view",
    metadata,
    "SELECT name, order_count, email FROM customer WHERE order_count > 0",
)
{%- if cookiecutter.database == "postgresql" %}
add_customer_sp = Function(
    "add_customer_sp(in_name varchar, in_order_count integer, in_email varchar)",
    metadata,
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
add_customer_sp = Function(
    "add_customer_sp",
    metadata,
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
