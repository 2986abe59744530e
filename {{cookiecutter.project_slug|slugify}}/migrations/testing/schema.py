"""A comparable picture of a database's schema, by reflection."""

from __future__ import annotations

import re
import sqlite3
import warnings
from bisect import insort
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Inspector, create_engine, inspect, pool
from sqlalchemy.exc import CompileError, SAWarning

from migrations.declared import READERS
from migrations.testing.catalog import catalog, ordered, pictured, version_tables

# CREATE [UNIQUE] INDEX [IF NOT EXISTS] name ON table (...): the group is from "(" on.
_NAME = r'(?:"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|[^\s(]+)'
INDEX_DEFINITION = re.compile(
    rf"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?{_NAME}\s*ON\s*{_NAME}\s*(\(.*)\Z",
    re.IGNORECASE | re.DOTALL,
)


def snapshot(connection: Connection, only: Collection[str] | None = None) -> dict[str, Any]:
    """Tables with their columns (type, nullable, server default, computed, identity,
    comment), keys, indexes, constraints (with their options: a foreign key's ON DELETE...)
    and comment; the view names; the views, functions, procedures and triggers with their
    definitions as the database renders them (so two databases built differently compare
    equal when they are); the sequences where the database has them, and PostgreSQL's enum
    and domain types. Everything SQLAlchemy reflects of each is compared (see ``described``).
    ``only``: reflect these tables alone (the others are left out of the picture)."""
    inspector = inspect(connection)
    names = sorted(set(inspector.get_table_names()) - version_tables())
    if only is not None:
        names = [name for name in names if name in only]
    dialect = connection.dialect
    sqlite = dialect.name == "sqlite"
    with warnings.catch_warnings():  # SQLite's indexes on expressions, which SQLAlchemy skips
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index", SAWarning)
        reflected = reflect(inspector, names, indexes=not sqlite, comments=dialect.supports_comments)
    if sqlite:  # SQLAlchemy reflects too little of them: see sqlite_indexes()
        reflected["indexes"] = sqlite_indexes(connection, names)
    unreflected = [table for table in names if table not in reflected["columns"]]
    if unreflected:  # get_multi_* leaves out a table it cannot reflect; say which
        raise AssertionError(f"tables that could not be reflected: {', '.join(unreflected)}")
    tables = {}
    for table in names:
        tables[table] = {
            "columns": {
                column["name"]: described(
                    {**column, "name": None, "type": type_name(column["type"], dialect)}, "type", "nullable", "default"
                )
                for column in reflected["columns"][table]
            },
            "primary_key": described(reflected["primary_key"][table], "name", "constrained_columns"),
            "foreign_keys": ordered(
                described(fk, "name", "constrained_columns", "referred_table", "referred_columns")
                for fk in reflected["foreign_keys"][table]
            ),
            "indexes": ordered(index_picture(index) for index in reflected["indexes"][table]),
            "unique": ordered(described(unique, "name", "column_names") for unique in reflected["unique"][table]),
            "checks": ordered(described(check, "name", "sqltext") for check in reflected["checks"][table]),
            "comment": reflected.get("comment", {}).get(table, {}).get("text"),
        }
    picture = {"tables": tables, "views": sorted(inspector.get_view_names()), "objects": existing_objects(connection)}
    if dialect.supports_sequences:  # PostgreSQL, MariaDB
        picture["sequences"] = sorted(inspector.get_sequence_names())
    if dialect.name == "postgresql":  # a downgrade that drops a table keeps its enum types
        picture["enums"] = sorted((enum["name"], tuple(enum["labels"])) for enum in inspector.get_enums())
        if hasattr(inspector, "get_domains"):  # SQLAlchemy 2.0+
            domains = inspector.get_domains()
            picture["domains"] = ordered(described(domain, "name", "type", "nullable", "default") for domain in domains)
        else:
            warnings.warn("this SQLAlchemy cannot reflect domain types: snapshot() leaves them out", stacklevel=2)
    return picture


def described(item: dict[str, Any], *first: str) -> tuple[Any, ...]:
    """A reflected item (a column, a key, a constraint...) as a comparable tuple: the values
    of ``first``, then every other key that has a value, sorted, so that nothing SQLAlchemy
    reflects of it is left out of the comparison (a foreign key's options, a comment...)."""
    rest = {key: value for key, value in item.items() if key not in first and value not in (None, {}, [], ())}
    return (*(canonical(item.get(key)) for key in first), *canonical(rest))


def type_name(type_: Any, dialect: Any) -> str:
    """A column's type as the database's DDL names it: a PostgreSQL enum or domain by its
    name (``str()`` says VARCHAR or DOMAIN), MariaDB's ENUM with its values."""
    try:
        return type_.compile(dialect=dialect)
    except CompileError:  # NullType: a type SQLAlchemy did not know
        return str(type_)


def index_picture(index: dict[str, Any]) -> tuple[Any, ...]:
    """An index as reflected: name, columns, unique, then the rest: PostgreSQL's expressions,
    the order of its columns (DESC), a partial index's WHERE, its method..."""
    return described({**index, "unique": bool(index["unique"])}, "name", "column_names", "unique")


def canonical(value: Any) -> Any:
    """A reflected value in a form that compares equal when it means the same: a dict's
    items sorted, every leaf as text."""
    if isinstance(value, dict):
        return tuple(sorted((str(key), canonical(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(canonical(item) for item in value)
    return str(value)


def reflect(
    inspector: Inspector, names: list[str], indexes: bool = True, comments: bool = False
) -> dict[str, dict[str, Any]]:
    """What SQLAlchemy reflects of these tables, by kind of thing, then by table."""
    methods = {
        "columns": inspector.get_multi_columns,
        "primary_key": inspector.get_multi_pk_constraint,
        "foreign_keys": inspector.get_multi_foreign_keys,
        "indexes": inspector.get_multi_indexes,
        "unique": inspector.get_multi_unique_constraints,
        "checks": inspector.get_multi_check_constraints,
    }
    if not indexes:
        del methods["indexes"]
    if comments:  # SQLite has none
        methods["comment"] = inspector.get_multi_table_comment
    # All the tables at once: one query per kind of thing on PostgreSQL; SQLite and MariaDB
    # reflect table by table either way.
    return {
        part: {table: found for (_, table), found in method(filter_names=names).items()} if names else {}
        for part, method in methods.items()
    }


def sqlite_indexes(connection: Connection, names: list[str]) -> dict[str, list[dict[str, Any]]]:
    """By table, SQLite's indexes (those made by CREATE INDEX; UNIQUE constraints are
    reflected as such), read from ``sqlite_master``. SQLAlchemy leaves out an index on an
    expression and does not reflect the order or collation of its columns; so each is given
    with its definition as its one "column": the SQL after the table's name, folded (see
    ``fold()``), so that two ways of writing the same index mostly compare equal."""
    found: dict[str, list[dict[str, Any]]] = {table: [] for table in names}
    rows = connection.exec_driver_sql(
        'SELECT m.name, m.tbl_name, m.sql, i."unique" FROM sqlite_master AS m'
        " JOIN pragma_index_list(m.tbl_name) AS i ON i.name = m.name"
        " WHERE m.type = 'index' AND m.sql IS NOT NULL"
    )
    for name, table, sql, unique in rows:
        if table in found:
            definition = INDEX_DEFINITION.match(sql)
            folded = fold(definition[1] if definition else sql)
            found[table].append({"name": name, "column_names": [folded], "unique": unique})
    return found


def fold(sql: str) -> str:
    """SQL with its case, identifier quotes, comments and spaces folded (none next to
    punctuation, one between words), outside its string literals."""
    parts = re.split(r"('(?:[^']|'')*')", sql)
    for i in range(0, len(parts), 2):  # the even parts are outside the literals
        part = re.sub(r"--[^\n]*|/\*.*?\*/", " ", parts[i], flags=re.DOTALL)
        part = re.sub(r'["`\[\]]', "", part).lower()
        part = re.sub(r"\s*([^\w\s])\s*", r"\1", part)
        parts[i] = re.sub(r"\s+", " ", part)
    return "".join(parts).strip()


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
    return tuple(sqlite_driver_rows(connection, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY 1, 2, 3"))


def sqlite_catalog_since(
    connection: Connection, base: tuple[tuple[Any, ...], ...], tables: Collection[str]
) -> tuple[tuple[tuple[Any, ...], ...], list[tuple[Any, ...]]]:
    """``sqlite_catalog()`` now, when only ``tables`` (as their names are written) can have
    changed since ``base`` was read: their rows (their own, their indexes' and triggers', whose
    ``tbl_name`` is theirs) and SQLite's own ``sqlite_sequence`` read again, the others kept
    from ``base``; and the rows read. What a rename rewrites elsewhere (a view, another table's
    foreign key) is not among them: after one, read the whole catalog."""
    names = {*tables, "sqlite_sequence"}
    listed = ", ".join("'" + name.replace("'", "''") + "'" for name in sorted(names))
    query = f"SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name IN ({listed})"
    read = sqlite_driver_rows(connection, query)
    merged = [row for row in base if row[2] not in names]  # in sqlite_catalog()'s order, as base is
    # The rows read, each put in its place (a few, among hundreds: sorting all of them again,
    # at each step, made a long walk's cost grow with the square of its length). In the order
    # of ORDER BY 1, 2, 3: (type, name) is unique, so the SQL text is never compared, and
    # SQLite's BINARY collation orders UTF-8 text as Python orders str.
    for row in read:
        insort(merged, tuple(row))
    return tuple(merged), read


def sqlite_driver_rows(connection: Connection, sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql``, run by the driver itself on the connection's own SQLite connection
    (sqlite3's, or aiosqlite's adapter, where the connection can be used: see
    migrations/testing/connections.py), outside SQLAlchemy's transaction handling."""
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


def replayable(catalog: tuple[tuple[Any, ...], ...]) -> bool:
    """Whether ``snapshot_of_catalog()`` can rebuild this SQLite schema: anything but a virtual
    table, whose module may be an extension loaded elsewhere and which makes tables of its own."""
    return not any(kind == "table" and (sql or "").startswith("CREATE VIRTUAL TABLE") for kind, _, _, sql in catalog)


def changed_tables(before: tuple[tuple[Any, ...], ...], after: tuple[tuple[Any, ...], ...]) -> set[str]:
    """The tables whose ``sqlite_master`` rows (their own, or their indexes') differ between
    two SQLite catalogs: the only tables whose snapshots can differ (a table's reflection is
    read from its own rows), so the only ones ``snapshot(only=...)`` needs to compare."""
    return {table for kind, _name, table, _sql in set(before) ^ set(after) if kind in ("table", "index")}


def snapshot_of_catalog(catalog: tuple[tuple[Any, ...], ...], only: Collection[str] | None = None) -> dict[str, Any]:
    """``snapshot()`` of a SQLite database whose ``sqlite_catalog()`` this was: its CREATE
    statements run again in an empty in-memory database, tables first, then indexes, views
    and triggers. SQLite reads a schema from that text, so this is the snapshot the database
    itself had. A collation or function that the text names and that the database's
    connection had registered (SQLite checks that they exist) gets a stand-in, which
    reflection never calls. What SQLite makes itself (``sqlite_autoindex_*``, which has no
    SQL, ``sqlite_sequence``) comes back with the tables. See ``replayable()``."""
    with in_memory_sqlite() as connection:
        driver = connection.connection.driver_connection
        stand_ins: set[str] = set()
        for kind in ("table", "index", "view", "trigger"):
            for row_kind, name, _, sql in catalog:
                if row_kind == kind and sql is not None and not name.startswith("sqlite_"):
                    _replay(driver, sql, stand_ins)
        return snapshot(connection, only)


def snapshot_of_copy(copy: bytes) -> dict[str, Any]:
    """``snapshot()`` of a SQLite database serialized (``sqlite3.Connection.serialize()``)."""
    with in_memory_sqlite() as connection:
        connection.connection.driver_connection.deserialize(copy)
        return snapshot(connection)


@contextmanager
def in_memory_sqlite() -> Iterator[Connection]:
    """A connection to a new, empty in-memory SQLite database, gone afterwards."""
    engine = create_engine("sqlite://", poolclass=pool.StaticPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _replay(driver: Any, sql: str, stand_ins: set[str]) -> None:
    """Run one CREATE statement, giving it the collations and functions it lacks."""
    while True:
        try:
            driver.execute(sql)
            return
        except sqlite3.OperationalError as error:
            missing = re.fullmatch(r"no such (collation sequence|function): (.+)", str(error), re.DOTALL)
            if missing is None or missing.group(0) in stand_ins:
                raise RuntimeError(f"cannot rebuild this schema from sqlite_master ({error}): {sql}") from error
            stand_ins.add(missing.group(0))
            kind, name = missing.groups()
            if kind == "function":
                driver.create_function(name, -1, lambda *_: None, deterministic=True)
            else:
                driver.create_collation(name, lambda a, b: (a > b) - (a < b))


def compared(a: Connection, b: Connection) -> tuple[Any, Any]:
    """Two equal values when the databases of ``a`` and ``b`` have the same schema, else two
    that differ, for migrations/testing/stairway.py's ``differences()`` to say what differs:
    on PostgreSQL and MariaDB their catalogs (migrations/testing/catalog.py); on SQLite,
    when their ``sqlite_master`` rows are the same (see ``sqlite_catalog``), those rows;
    otherwise the snapshots of both."""
    rows = sqlite_catalog(a)
    if rows is not None and rows == sqlite_catalog(b):
        return rows, rows
    first = catalog(a)
    if first is not None:
        second = catalog(b)
        return (first, second) if first == second else (pictured(first), pictured(second))
    return snapshot(a), snapshot(b)


def leftovers(picture: dict[str, Any]) -> dict[str, Any]:
    """The parts of a snapshot that are not empty: {} for an empty database."""
    return {part: value for part, value in picture.items() if value}
