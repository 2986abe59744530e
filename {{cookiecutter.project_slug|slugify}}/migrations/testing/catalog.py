"""The schema of a PostgreSQL or MariaDB database from one catalog query, covering at least
what migrations/testing/schema.py's ``snapshot()`` covers, at a fraction of its cost.

``catalog()`` is one text: equal texts mean equal schemas (so equal snapshots), compared
without parsing. ``pictured()`` turns it into a picture shaped like a snapshot, for
migrations/testing/stairway.py's ``differences()`` to say what differs. Each object is
given as the database renders it (PostgreSQL's ``pg_get_*def``, ``format_type``;
MariaDB's ``information_schema``), with nothing that changes when it is dropped and made
again the same (oids, column positions, counters, creation times). ``catalog()`` is None
on other databases: reflect them with ``snapshot()``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from typing import Any, NamedTuple

from alembic.util import CommandError
from sqlalchemy import Connection

from migrations.declared import TEMPORARY, fold, normalise_pg
from migrations.environments import DEFAULT_VERSION_TABLE, all_version_tables


@cache
def version_tables() -> frozenset[str]:
    """Every environment's version table (migrations/environments.py): Alembic's bookkeeping,
    left out of the schema picture and the row counts."""
    from migrations.testing.head_build import project_config

    try:
        named = all_version_tables(project_config())
    except CommandError:  # env.py says what is wrong with the settings, where they are used
        named = frozenset()
    return frozenset({DEFAULT_VERSION_TABLE, *named})


# Rows (kind, table, name, detail: a JSON array), all in one JSON text, sorted.
POSTGRESQL = """
WITH rel AS (
    SELECT c.oid, c.relname::text AS name, c.relkind FROM pg_class c
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
), tab AS (SELECT * FROM rel WHERE relkind IN ('r', 'p')),
found (kind, tbl, name, detail) AS (
SELECT 'postgresql', NULL, current_schema()::text, json_build_array()
UNION ALL
SELECT 'table', t.name, NULL, json_build_array(n.description)
FROM tab t LEFT JOIN pg_description n ON n.objoid = t.oid AND n.classoid = 'pg_class'::regclass AND n.objsubid = 0
UNION ALL
SELECT 'column', t.name, a.attname::text, json_build_array(
    format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
    NULLIF(a.attidentity, ''), NULLIF(a.attgenerated, ''),
    CASE WHEN a.attcollation <> ty.typcollation THEN a.attcollation::regcollation::text END, n.description)
FROM tab t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = t.oid AND d.adnum = a.attnum
LEFT JOIN pg_description n ON n.objoid = t.oid AND n.classoid = 'pg_class'::regclass AND n.objsubid = a.attnum
UNION ALL
SELECT 'constraint', t.name, k.conname::text, json_build_array(k.contype, pg_get_constraintdef(k.oid), n.description)
FROM tab t JOIN pg_constraint k ON k.conrelid = t.oid
LEFT JOIN pg_description n ON n.objoid = k.oid AND n.classoid = 'pg_constraint'::regclass
WHERE k.contype IN ('p', 'u', 'f', 'c', 'x')
UNION ALL
SELECT 'index', t.name, i.relname::text, json_build_array(pg_get_indexdef(x.indexrelid), n.description)
FROM tab t JOIN pg_index x ON x.indrelid = t.oid JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_description n ON n.objoid = i.oid AND n.classoid = 'pg_class'::regclass AND n.objsubid = 0
WHERE NOT x.indisprimary
UNION ALL
SELECT 'trigger', t.name, g.tgname::text, json_build_array(pg_get_triggerdef(g.oid))
FROM tab t JOIN pg_trigger g ON g.tgrelid = t.oid WHERE NOT g.tgisinternal
UNION ALL
SELECT CASE relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, NULL, name,
       json_build_array(pg_get_viewdef(oid))
FROM rel WHERE relkind IN ('v', 'm')
AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = oid AND d.deptype = 'e')
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END, NULL,
       p.proname::text || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       json_build_array(pg_get_functiondef(p.oid))
FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace AND p.prokind IN ('f', 'p')
AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'sequence', NULL, r.name, json_build_array(
    format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
FROM rel r JOIN pg_sequence s ON s.seqrelid = r.oid
UNION ALL
SELECT 'enum', NULL, ty.typname::text, json_agg(e.enumlabel ORDER BY e.enumsortorder)
FROM pg_type ty JOIN pg_enum e ON e.enumtypid = ty.oid
WHERE ty.typnamespace = current_schema()::regnamespace GROUP BY ty.oid, ty.typname
UNION ALL
SELECT 'domain', NULL, ty.typname::text, json_build_array(
    format_type(ty.typbasetype, ty.typtypmod), ty.typnotnull, ty.typdefault,
    CASE WHEN ty.typcollation <> base.typcollation THEN ty.typcollation::regcollation::text END,
    (SELECT json_agg(json_build_array(k.conname, pg_get_constraintdef(k.oid)) ORDER BY k.conname)
     FROM pg_constraint k WHERE k.contypid = ty.oid))
FROM pg_type ty JOIN pg_type base ON base.oid = ty.typbasetype
WHERE ty.typnamespace = current_schema()::regnamespace AND ty.typtype = 'd'
)
SELECT json_agg(json_build_array(kind, tbl, name, detail)
                ORDER BY kind, tbl COLLATE "C", name COLLATE "C", detail::text COLLATE "C")::text,
       array_agg(tbl ORDER BY tbl COLLATE "C") FILTER (WHERE kind = 'table')
FROM found
"""

# The same for MariaDB; an index, a foreign key and a routine come one row per column or
# parameter, its position first. DATABASE() is the connection's database (in the query: one
# round trip per capture, not two).
MARIADB = """
SET STATEMENT group_concat_max_len = 4294967295 FOR
SELECT CONCAT('[', GROUP_CONCAT(JSON_ARRAY(kind, tbl, name, detail)
       ORDER BY BINARY kind, BINARY tbl, BINARY name, BINARY detail SEPARATOR ','), ']'),
       CONCAT('[', COALESCE(GROUP_CONCAT(IF(kind = 'table' AND name = 'BASE TABLE', JSON_QUOTE(tbl), NULL)
       ORDER BY BINARY tbl SEPARATOR ','), ''), ']')
FROM (
SELECT 'mariadb' AS kind, NULL AS tbl, NULL AS name, JSON_ARRAY() AS detail
UNION ALL
SELECT 'table', TABLE_NAME, TABLE_TYPE, JSON_ARRAY(TABLE_COMMENT) FROM information_schema.TABLES
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE')
UNION ALL
SELECT 'column', TABLE_NAME, COLUMN_NAME, JSON_ARRAY(COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA,
    GENERATION_EXPRESSION, CHARACTER_SET_NAME, COLLATION_NAME, COLUMN_COMMENT)
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()
UNION ALL
SELECT 'index', TABLE_NAME, INDEX_NAME, JSON_ARRAY(SEQ_IN_INDEX, COLUMN_NAME, COLLATION, SUB_PART,
    NON_UNIQUE, INDEX_TYPE, INDEX_COMMENT)
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()
UNION ALL
SELECT 'foreign key', TABLE_NAME, CONSTRAINT_NAME, JSON_ARRAY(ORDINAL_POSITION, COLUMN_NAME,
    NULLIF(REFERENCED_TABLE_SCHEMA, TABLE_SCHEMA), REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME)
FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL
UNION ALL
SELECT 'foreign key', TABLE_NAME, CONSTRAINT_NAME, JSON_ARRAY(0, UPDATE_RULE, DELETE_RULE)
FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()
UNION ALL
SELECT 'check', TABLE_NAME, CONSTRAINT_NAME, JSON_ARRAY(CHECK_CLAUSE)
FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()
UNION ALL
SELECT 'trigger', EVENT_OBJECT_TABLE, TRIGGER_NAME, JSON_ARRAY(ACTION_TIMING, EVENT_MANIPULATION,
    ACTION_ORIENTATION, ACTION_STATEMENT)
FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()
UNION ALL
SELECT 'view', NULL, TABLE_NAME, JSON_ARRAY(ALGORITHM, SECURITY_TYPE, CHECK_OPTION,
    REPLACE(VIEW_DEFINITION, CONCAT('`', TABLE_SCHEMA, '`.'), ''))
FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()
UNION ALL
SELECT LOWER(ROUTINE_TYPE), NULL, ROUTINE_NAME, JSON_ARRAY(0, DTD_IDENTIFIER, IS_DETERMINISTIC, SQL_DATA_ACCESS,
    SECURITY_TYPE, ROUTINE_COMMENT, ROUTINE_DEFINITION)
FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()
UNION ALL
SELECT LOWER(ROUTINE_TYPE), NULL, SPECIFIC_NAME, JSON_ARRAY(ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME,
    DTD_IDENTIFIER)
FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = DATABASE() AND ORDINAL_POSITION > 0
) AS found
"""


class Catalog(NamedTuple):
    """The whole schema as one text (equal texts: equal schemas), and the names of its tables."""

    text: str
    tables: list[str]


def catalog(connection: Connection) -> Catalog | None:
    """The schema of the connection's database from one query: PostgreSQL and MariaDB. None
    elsewhere (SQLite has ``sqlite_catalog()``; MySQL, whose information_schema differs
    from MariaDB's, is reflected)."""
    dialect = connection.dialect
    if dialect.name == "postgresql":
        text, tables = connection.exec_driver_sql(POSTGRESQL).one()
    elif dialect.name in ("mysql", "mariadb") and getattr(dialect, "is_mariadb", False):
        text, tables = connection.exec_driver_sql(MARIADB).one()
        tables = json.loads(tables)
    else:
        return None
    return Catalog(text, [table for table in tables or () if table not in version_tables()])


def pictured(text: str) -> dict[str, Any]:
    """A ``catalog()`` as ``snapshot()`` shapes its picture: tables, then the other objects."""
    rows = json.loads(text)
    dialect, _, schema, _ = next(row for row in rows if row[0] in ("postgresql", "mariadb"))
    rows = [row for row in rows if row[0] != dialect]
    tables: dict[str, dict[str, Any]] = defaultdict(empty_table)
    picture: dict[str, Any] = {"views": [], "objects": {}, "sequences": []}
    if dialect == "postgresql":
        picture |= {"enums": [], "domains": []}
        postgresql(rows, schema, tables, picture)
    else:  # MariaDB may give each detail as JSON text
        rows = [(kind, table, name, json.loads(d) if isinstance(d, str) else d) for kind, table, name, d in rows]
        mariadb(rows, tables, picture)
    for parts in tables.values():
        for part, value in parts.items():
            if isinstance(value, list):
                parts[part] = ordered(value)
    ordered_picture = {key: ordered(value) if isinstance(value, list) else value for key, value in picture.items()}
    return {"tables": dict(sorted(tables.items())), **ordered_picture}


def empty_table() -> dict[str, Any]:
    parts = ("primary_key", "foreign_keys", "indexes", "unique", "checks")
    return {"columns": {}, **{part: [] for part in parts}, "comment": None}


def ordered(items: Iterable[Any]) -> list[Any]:
    """Pictures sorted by their text: names may be None (an unnamed CHECK beside named ones)."""
    return sorted(items, key=repr)


def postgresql(rows: list[Any], schema: str, tables: dict[str, Any], picture: dict[str, Any]) -> None:
    parts = {"p": "primary_key", "u": "unique", "f": "foreign_keys", "c": "checks", "x": "unique"}
    for kind, table, name, detail in rows:
        if table in version_tables():
            continue
        if kind == "table":
            tables[table]["comment"] = detail[0]
        elif kind == "column":
            tables[table]["columns"][name] = tuple(detail)
        elif kind == "constraint":
            tables[table][parts[detail[0]]].append((name, *detail[1:]))
        elif kind == "index":
            tables[table]["indexes"].append((name, *detail))
        elif kind in ("sequence", "enum", "domain"):
            picture[f"{kind}s"].append((name, *detail))
        else:  # a view, function, procedure or trigger: as migrations/declared.py compares them
            key = f"{kind} {name}" if table is None else f"{kind} {name} ON {table}"
            picture["objects"][key] = normalise_pg(detail[0], schema)
            if kind == "view":
                picture["views"].append(name)


def mariadb(rows: list[Any], tables: dict[str, Any], picture: dict[str, Any]) -> None:
    multi: dict[tuple[str, str, str], list[Any]] = defaultdict(list)  # one row per column or parameter
    columns, sequences = [], []
    for kind, table, name, detail in rows:
        if table in version_tables() or (kind not in ("index", "column") and (name or "").startswith(TEMPORARY)):
            continue  # the version table; migrations/declared.py's objects of a moment
        if kind == "table" and name == "SEQUENCE":
            sequences.append(table)
        elif kind == "table":
            tables[table]["comment"] = detail[0] or None
        elif kind == "column":
            columns.append((table, name, tuple(detail)))
        elif kind == "check":
            tables[table]["checks"].append((name, detail[0]))
        elif kind in ("trigger", "view"):
            key = f"trigger {name} ON {table}" if kind == "trigger" else f"view {name}"
            picture["objects"][key] = (*detail[:3], fold(detail[3]))
            picture["views"] += [name] if kind == "view" else []
        else:  # an index, a foreign key, a function or a procedure: gathered below
            multi[kind, table, name].append(detail)
    for table, name, detail in columns:  # views and sequences have columns too
        if table in tables:
            tables[table]["columns"][name] = detail
    picture["sequences"] = sequences
    for (kind, table, name), details in multi.items():
        details = sorted(details, key=lambda detail: detail[0])
        if kind == "index":  # (column, order, prefix length) each; unique, type, comment
            part = "primary_key" if name == "PRIMARY" else "indexes"
            tables[table][part].append((name, [tuple(d[1:4]) for d in details], *details[0][4:]))
        elif kind == "foreign key":  # its rules; then (column, referred schema, table, column) each
            rules, *columns_of = details
            tables[table]["foreign_keys"].append((name, [tuple(d[1:]) for d in columns_of], *rules[1:]))
        else:  # a routine, then its parameters
            routine, *parameters = details
            definition = (*routine[1:-1], fold(routine[-1] or ""))
            picture["objects"][f"{kind} {name}"] = (*definition, [tuple(d[1:]) for d in parameters])
