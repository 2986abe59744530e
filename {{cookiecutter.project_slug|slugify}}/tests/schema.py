"""A comparable picture of a database's schema, by reflection."""

from __future__ import annotations

import warnings
from typing import Any

from sqlalchemy import Connection, Inspector, create_engine, inspect, pool
from sqlalchemy.exc import SAWarning

from migrations.declared import READERS

VERSION_TABLE = "alembic_version"


def snapshot(connection: Connection) -> dict[str, Any]:
    """Tables with their columns, keys, indexes and constraints; the view names; the
    views, functions, procedures and triggers with their definitions as the database
    renders them (so two databases built differently compare equal when they are); the
    sequences where the database has them, and PostgreSQL's enum types."""
    inspector = inspect(connection)
    names = sorted(set(inspector.get_table_names()) - {VERSION_TABLE})
    with warnings.catch_warnings():  # SQLite's indexes on expressions: see sqlite_expression_indexes()
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index", SAWarning)
        reflected = reflect(inspector, names)
    if connection.dialect.name == "sqlite":
        for table, indexes in sqlite_expression_indexes(connection, reflected["indexes"]).items():
            reflected["indexes"][table] = [*reflected["indexes"][table], *indexes]
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
    picture = {"tables": tables, "views": sorted(inspector.get_view_names()), "objects": existing_objects(connection)}
    if connection.dialect.supports_sequences:  # PostgreSQL, MariaDB
        picture["sequences"] = sorted(inspector.get_sequence_names())
    if connection.dialect.name == "postgresql":  # a downgrade that drops a table keeps its enum types
        picture["enums"] = sorted((enum["name"], tuple(enum["labels"])) for enum in inspector.get_enums())
    return picture


def reflect(inspector: Inspector, names: list[str]) -> dict[str, dict[str, Any]]:
    """What SQLAlchemy reflects of these tables, by kind of thing, then by table."""
    # All the tables at once: one query per kind of thing on PostgreSQL; SQLite and MariaDB
    # reflect table by table either way.
    return {
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


def sqlite_expression_indexes(connection: Connection, reflected: dict[str, list]) -> dict[str, list[dict[str, Any]]]:
    """The indexes on expressions of SQLite tables, which SQLAlchemy does not reflect (it warns
    and leaves them out), by name, so that one a downgrade leaves behind is seen. Their
    columns are given as "(expression)": how SQLite keeps them is its own SQL text, which
    two equal indexes need not share."""
    found: dict[str, list[dict[str, Any]]] = {}
    rows = connection.exec_driver_sql(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    )
    for name, table, sql in rows:
        if table in reflected and all(index["name"] != name for index in reflected[table]):
            unique = sql.upper().startswith("CREATE UNIQUE")
            found.setdefault(table, []).append({"name": name, "column_names": ["(expression)"], "unique": unique})
    return found


def existing_objects(connection: Connection) -> dict[str, str]:
    """The views, functions, procedures and triggers, as a snapshot lists them: "kind name"
    to their definition as the database renders it."""
    return {
        f"{label} {name}": definition
        for (label, name), (_, definition) in READERS[connection.dialect.name].existing(connection).items()
    }


def sqlite_catalog(connection: Connection) -> tuple[tuple[Any, ...], ...] | None:
    """On SQLite, the whole schema: the rows of ``sqlite_master`` (each object's type, name,
    table and SQL text), which is all that reflection reads it from, so two databases with
    the same rows have equal snapshots. None on other databases.

    It reads through the driver's own connection (it runs between every two steps of the
    stairway, where SQLite's C code answers faster than SQLAlchemy can wrap a statement):
    it starts no transaction and ends none, and inside one it sees its uncommitted changes.
    """
    if connection.dialect.name != "sqlite":
        return None
    rows = connection.connection.driver_connection.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name, tbl_name"
    )
    return tuple(rows.fetchall())


def replayable(catalog: tuple[tuple[Any, ...], ...]) -> bool:
    """Whether ``snapshot_of_catalog()`` can rebuild this SQLite schema: anything but a virtual
    table, whose module may be an extension loaded elsewhere and which makes tables of its own."""
    return not any(kind == "table" and (sql or "").startswith("CREATE VIRTUAL TABLE") for kind, _, _, sql in catalog)


def snapshot_of_catalog(catalog: tuple[tuple[Any, ...], ...]) -> dict[str, Any]:
    """``snapshot()`` of a SQLite database whose ``sqlite_catalog()`` this was: its CREATE
    statements run again in an empty in-memory database, tables first, then indexes, views
    and triggers. SQLite reads a schema from that text alone, so this is the snapshot the
    database itself had. What SQLite makes itself (``sqlite_autoindex_*``, which has no
    SQL, ``sqlite_sequence``) comes back with the tables. See ``replayable()``."""
    engine = create_engine("sqlite://", poolclass=pool.StaticPool)
    try:
        with engine.connect() as connection:
            driver = connection.connection.driver_connection
            for kind in ("table", "index", "view", "trigger"):
                for row_kind, name, _, sql in catalog:
                    if row_kind == kind and sql is not None and not name.startswith("sqlite_"):
                        driver.execute(sql)
            return snapshot(connection)
    finally:
        engine.dispose()


def compared(a: Connection, b: Connection) -> tuple[Any, Any]:
    """Two equal values when the databases of ``a`` and ``b`` have the same schema, else two
    that differ: on SQLite, when their ``sqlite_master`` rows are the same (see
    ``sqlite_catalog``), those rows; otherwise the snapshots of both, for
    tests/stairway.py's ``differences()`` to say what differs."""
    catalog = sqlite_catalog(a)
    if catalog is not None and catalog == sqlite_catalog(b):
        return catalog, catalog
    return snapshot(a), snapshot(b)


def leftovers(picture: dict[str, Any]) -> dict[str, Any]:
    """The parts of a snapshot that are not empty: {} for an empty database."""
    return {part: value for part, value in picture.items() if value}
