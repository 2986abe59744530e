"""The models: SQLAlchemy 2.x typed mappings on a MetaData with a naming convention.

alembic.ini names this MetaData (``target_metadata``): autogenerate compares the
database with it, and create_db.py creates a fresh database from it. The naming
convention gives every constraint and index a predictable name, so that later
migrations can drop or alter them by name on every database.
"""

from __future__ import annotations

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    metadata = metadata


class Customer(Base):
    """The cookbook's customer table (migrations/versions holds its history)."""

    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))
    order_count: Mapped[int | None]
    email: Mapped[str | None] = mapped_column(String(255), index=True)
