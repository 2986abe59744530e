"""The schema of a PostgreSQL or MariaDB database in one catalog query, shaped like
migrations/testing/schema.py's ``snapshot()`` and covering at least what it covers, so
that two equal catalogs mean two equal snapshots, at a fraction of reflection's cost.

Each object is given as the database renders it (PostgreSQL's ``pg_get_*def``,
``format_type``; MariaDB's ``information_schema``), with nothing that changes when an
object is dropped and made again the same (oids, column positions, counters, creation
times). ``catalog()`` is None on other databases: reflect them with ``snapshot()``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from migrations.declared import TEMPORARY, fold, normalise_pg

VERSION_TABLE = "alembic_version"

# Each row: (kind, table, name, detail): detail is a JSON array.
POSTGRESQL = """
WITH rel AS (
    SELECT c.oid, c.relname::text AS name, c.relkind,
           EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                   AND d.deptype = 'e') AS of_extension
    FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
), tab AS (SELECT * FROM rel WHERE relkind IN ('r', 'p'))
SELECT 'table', name, NULL, json_build_array(obj_description(oid, 'pg_class')) FROM tab
UNION ALL
SELECT 'column', t.name, a.attname::text, json_build_array(
    format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
    NULLIF(a.attidentity, ''), NULLIF(a.attgenerated, ''),
    CASE WHEN a.attcollation <> ty.typcollation THEN a.attcollation::regcollation::text END,
    col_description(t.oid, a.attnum))
FROM tab t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = t.oid AND d.adnum = a.attnum
UNION ALL
SELECT 'constraint', t.name, k.conname::text,
       json_build_array(k.contype, pg_get_constraintdef(k.oid), obj_description(k.oid, 'pg_constraint'))
FROM tab t JOIN pg_constraint k ON k.conrelid = t.oid WHERE k.contype IN ('p', 'u', 'f', 'c', 'x')
UNION ALL
SELECT 'index', t.name, i.relname::text,
       json_build_array(pg_get_indexdef(x.indexrelid), obj_description(x.indexrelid, 'pg_class'))
FROM tab t JOIN pg_index x ON x.indrelid = t.oid JOIN pg_class i ON i.oid = x.indexrelid
WHERE NOT x.indisprimary
UNION ALL
SELECT 'trigger', t.name, g.tgname::text, json_build_array(pg_get_triggerdef(g.oid))
FROM tab t JOIN pg_trigger g ON g.tgrelid = t.oid WHERE NOT g.tgisinternal
UNION ALL
SELECT CASE relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, NULL, name,
       json_build_array(pg_get_viewdef(oid))
FROM rel WHERE relkind IN ('v', 'm') AND NOT of_extension
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
"""

# The same for MariaDB: an index, a foreign key and a routine come one row per column
# or parameter, position first. %s is the database's name.
MARIADB = """
SELECT 'table', TABLE_NAME, TABLE_TYPE, JSON_ARRAY(TABLE_COMMENT) FROM information_schema.TABLES
WHERE TABLE_SCHEMA = %s AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE')
UNION ALL
SELECT 'column', TABLE_NAME, COLUMN_NAME, JSON_ARRAY(COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA,
    GENERATION_EXPRESSION, CHARACTER_SET_NAME, COLLATION_NAME, COLUMN_COMMENT)
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s
UNION ALL
SELECT 'index', TABLE_NAME, INDEX_NAME, JSON_ARRAY(SEQ_IN_INDEX, COLUMN_NAME, COLLATION, SUB_PART,
    NON_UNIQUE, INDEX_TYPE, INDEX_COMMENT)
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s
UNION ALL
SELECT 'foreign key', k.TABLE_NAME, k.CONSTRAINT_NAME, JSON_ARRAY(k.ORDINAL_POSITION, k.COLUMN_NAME,
    NULLIF(k.REFERENCED_TABLE_SCHEMA, k.TABLE_SCHEMA), k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME,
    r.UPDATE_RULE, r.DELETE_RULE)
FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r
ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
WHERE k.TABLE_SCHEMA = %s
UNION ALL
SELECT 'check', TABLE_NAME, CONSTRAINT_NAME, JSON_ARRAY(CHECK_CLAUSE)
FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s
UNION ALL
SELECT 'trigger', EVENT_OBJECT_TABLE, TRIGGER_NAME, JSON_ARRAY(ACTION_TIMING, EVENT_MANIPULATION,
    ACTION_ORIENTATION, ACTION_STATEMENT)
FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s
UNION ALL
SELECT 'view', NULL, TABLE_NAME, JSON_ARRAY(ALGORITHM, SECURITY_TYPE, CHECK_OPTION,
    REPLACE(VIEW_DEFINITION, CONCAT('`', TABLE_SCHEMA, '`.'), ''))
FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s
UNION ALL
SELECT LOWER(ROUTINE_TYPE), NULL, ROUTINE_NAME, JSON_ARRAY(0, DTD_IDENTIFIER, IS_DETERMINISTIC, SQL_DATA_ACCESS,
    SECURITY_TYPE, ROUTINE_COMMENT, ROUTINE_DEFINITION)
FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s
UNION ALL
SELECT LOWER(ROUTINE_TYPE), NULL, SPECIFIC_NAME, JSON_ARRAY(ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME,
    DTD_IDENTIFIER)
FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = %s AND ORDINAL_POSITION > 0
"""


def catalog(connection: Connection) -> dict[str, Any] | None:
    """The schema of the connection's database, as ``snapshot()`` shapes it, from one catalog
    query: PostgreSQL and MariaDB. None elsewhere (SQLite has ``sqlite_catalog()``; MySQL,
    whose information_schema differs from MariaDB's, is reflected)."""
    dialect = connection.dialect
    if dialect.name == "postgresql":
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
        return postgresql(connection.exec_driver_sql(POSTGRESQL).all(), schema)
    if dialect.name in ("mysql", "mariadb") and getattr(dialect, "is_mariadb", False):
        database = connection.exec_driver_sql("SELECT DATABASE()").scalar_one()
        return mariadb(connection.exec_driver_sql(MARIADB, (database,) * MARIADB.count("%s")).all())
    return None


def empty_table() -> dict[str, Any]:
    return {"columns": {}, "primary_key": [], "foreign_keys": [], "indexes": [], "unique": [], "checks": []}


def postgresql(rows: list[Any], schema: str) -> dict[str, Any]:
    tables: dict[str, dict[str, Any]] = defaultdict(empty_table)
    picture: dict[str, Any] = {"views": [], "objects": {}, "sequences": [], "enums": [], "domains": []}
    parts = {"p": "primary_key", "u": "unique", "f": "foreign_keys", "c": "checks", "x": "unique"}
    for kind, table, name, detail in rows:
        if table == VERSION_TABLE:
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
    return finished(tables, picture)


def mariadb(rows: list[Any]) -> dict[str, Any]:
    tables: dict[str, dict[str, Any]] = defaultdict(empty_table)
    picture: dict[str, Any] = {"views": [], "objects": {}, "sequences": []}
    multi: dict[tuple[str, str, str], list[Any]] = defaultdict(list)  # one row per column or parameter
    columns, sequences = [], set()
    for kind, table, name, detail in rows:
        detail = json.loads(detail)
        if table == VERSION_TABLE or (kind not in ("index", "column") and (name or "").startswith(TEMPORARY)):
            continue  # the version table; migrations/declared.py's objects of a moment
        if kind == "table" and name == "SEQUENCE":
            sequences.add(table)
        elif kind == "table":
            tables[table]["comment"] = detail[0] or None
        elif kind == "column":
            columns.append((table, name, tuple(detail)))
        elif kind == "check":
            tables[table]["checks"].append((name, detail[0]))
        elif kind == "trigger":
            picture["objects"][f"trigger {name} ON {table}"] = (*detail[:3], fold(detail[3]))
        elif kind == "view":
            picture["objects"][f"view {name}"] = (*detail[:3], fold(detail[3]))
            picture["views"].append(name)
        else:  # an index, a foreign key, a function or a procedure: gathered below
            multi[kind, table, name].append(detail)
    for table, name, detail in columns:  # views and sequences have columns too
        if table in tables:
            tables[table]["columns"][name] = detail
    picture["sequences"] = sorted(sequences)
    for (kind, table, name), details in multi.items():
        details = sorted(details, key=lambda detail: detail[0])
        first, *rest = details
        if kind == "index":  # (column, order, prefix length) each; unique, type, comment
            part = "primary_key" if name == "PRIMARY" else "indexes"
            tables[table][part].append((name, [tuple(d[1:4]) for d in details], *first[4:]))
        elif kind == "foreign key":  # (column, referred schema, table, column) each; its rules
            tables[table]["foreign_keys"].append((name, [tuple(d[1:5]) for d in details], *first[5:]))
        else:  # a routine, then its parameters
            definition = (*first[1:-1], fold(first[-1] or ""))
            picture["objects"][f"{kind} {name}"] = (*definition, [tuple(d[1:]) for d in rest])
    return finished(tables, picture)


def ordered(items: Iterable[Any]) -> list[Any]:
    """Pictures sorted by their text: names may be None (an unnamed CHECK beside named ones)."""
    return sorted(items, key=repr)


def finished(tables: dict[str, dict[str, Any]], picture: dict[str, Any]) -> dict[str, Any]:
    """Every list sorted (by text: None beside names), the tables by name."""
    for parts in tables.values():
        for part, value in parts.items():
            if isinstance(value, list):
                parts[part] = ordered(value)
    ordered_picture = {key: ordered(value) if isinstance(value, list) else value for key, value in picture.items()}
    return {"tables": dict(sorted(tables.items())), **ordered_picture}
