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
    names = sorted(set(inspector.get_table_names()) - {VERSION_TABLE})
    # All the tables at once: one query per kind of thing on PostgreSQL; SQLite and MariaDB
    # reflect table by table either way.
    reflected = {
        part: {table: found for (_, table), found in method(filter_names=names).items()} if names else {}
        for part, method in (
            ("columns", inspector.get_multi_columns),
            ("primary_key", inspector.get_multi_pk_constraint),
            ("foreign_keys", inspector.get_multi_foreign_keys),
            ("indexes", inspector.get_multi_indexes),
            ("unique", inspector.get_multi_unique_constraints),
            ("checks", inspector.get_multi_check_constraints),
        )
    }
    unreflected = [table for table in names if table not in reflected["columns"]]
    if unreflected:  # get_multi_* leaves out a table it cannot reflect; say which
        raise AssertionError(f"tables that could not be reflected: {', '.join(unreflected)}")
    tables = {}
    for table in names:
        tables[table] = {
            "columns": {
                column["name"]: (str(column["type"]), column["nullable"], column.get("default"))
                for column in reflected["columns"][table]
            },
            "primary_key": reflected["primary_key"][table]["constrained_columns"],
            "foreign_keys": sorted(
                (fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                for fk in reflected["foreign_keys"][table]
            ),
            "indexes": sorted(
                (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                for index in reflected["indexes"][table]
            ),
            "unique": sorted((unique["name"], tuple(unique["column_names"])) for unique in reflected["unique"][table]),
            "checks": sorted((check["name"], check["sqltext"]) for check in reflected["checks"][table]),
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
