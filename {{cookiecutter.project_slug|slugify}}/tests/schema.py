"""A comparable picture of a database's schema, by reflection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, inspect

from migrations.declared import READERS

VERSION_TABLE = "alembic_version"


def snapshot(connection: Connection) -> dict[str, Any]:
    """Tables with their columns, keys, indexes and constraints; the view names; the
    views, functions, procedures and triggers with their definitions as the database
    renders them (so two databases built differently compare equal when they are); the
    sequences where the database has them, and PostgreSQL's enum types."""
    inspector = inspect(connection)
    tables = {}
    for table in sorted(set(inspector.get_table_names()) - {VERSION_TABLE}):
        tables[table] = {
            "columns": {
                column["name"]: (str(column["type"]), column["nullable"], column.get("default"))
                for column in inspector.get_columns(table)
            },
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                for index in inspector.get_indexes(table)
            ),
            "unique": sorted(
                (unique["name"], tuple(unique["column_names"])) for unique in inspector.get_unique_constraints(table)
            ),
            "checks": sorted((check["name"], check["sqltext"]) for check in inspector.get_check_constraints(table)),
        }
    objects = {
        f"{label} {name}": definition
        for (label, name), (_, definition) in READERS[connection.dialect.name].existing(connection).items()
    }
    picture = {"tables": tables, "views": sorted(inspector.get_view_names()), "objects": objects}
    if connection.dialect.supports_sequences:  # PostgreSQL, MariaDB
        picture["sequences"] = sorted(inspector.get_sequence_names())
    if connection.dialect.name == "postgresql":  # a downgrade that drops a table keeps its enum types
        picture["enums"] = sorted((enum["name"], tuple(enum["labels"])) for enum in inspector.get_enums())
    return picture


def leftovers(picture: dict[str, Any]) -> dict[str, Any]:
    """The parts of a snapshot that are not empty: {} for an empty database."""
    return {part: value for part, value in picture.items() if value}
