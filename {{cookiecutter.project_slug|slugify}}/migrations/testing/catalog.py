"""The schema of a PostgreSQL or MariaDB database from one catalog query, covering at least
what migrations/testing/schema.py's ``snapshot()`` covers, at a fraction of its cost.

``catalog()`` is a Catalog: one JSON text per table (its columns, keys, indexes, triggers,
the sequences it owns) and per other object; equal catalogs mean equal schemas (so equal
snapshots), compared without parsing. Given the tables a step changed and the catalog
before it, ``catalog()`` reads those tables alone, with what depends on them, so that a
step's capture costs what the step changed (migrations/testing/changes.py).
``pictured()`` turns a catalog into a picture shaped like a snapshot, for
migrations/testing/stairway.py's ``differences()`` to say what differs. Each object is
given as the database renders it (PostgreSQL's ``pg_get_*def``, ``format_type``;
MariaDB's ``information_schema``), with nothing that changes when it is dropped and made
again the same (oids, column positions, counters, creation times). ``catalog()`` is None
on other databases: reflect them with ``snapshot()``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Collection, Iterable
from functools import cache
from typing import Any

from alembic.util import CommandError
from sqlalchemy import Connection, TextClause, text

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


# The catalog's rows come grouped: one group per table (its columns, constraints, indexes,
# triggers and the sequences it owns) and one per other object (a view, a function, ...), each
# group one JSON text of rows (kind, table, name, detail: a JSON array), sorted. A capture of a
# few tables reads only their groups (``scoped``), and the objects that depend on them.
PG_WHOLE = """
rel AS (
    SELECT c.oid, c.relname::text AS name, c.relkind FROM pg_class c
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
), tab AS (SELECT oid, name FROM rel WHERE relkind IN ('r', 'p')),
vw AS (SELECT oid, name, relkind FROM rel WHERE relkind IN ('v', 'm')),
seq AS (
    SELECT r.oid, r.name, o.relname::text AS owner FROM rel r
    LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = r.oid
        AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    LEFT JOIN pg_class o ON o.oid = d.refobjid AND o.relkind IN ('r', 'p')
        AND o.relnamespace = current_schema()::regnamespace
    WHERE r.relkind = 'S'
), fn AS (SELECT p.* FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace AND p.prokind IN ('f', 'p'))
"""
# The tables named, with what depends on them: the views and functions whose text names them,
# the sequences they own.
PG_SCOPED = """
tab AS (
    SELECT c.oid, c.relname::text AS name FROM pg_class c
    WHERE c.relname = ANY(CAST(:tables AS name[])) AND c.relnamespace = current_schema()::regnamespace
    AND c.relkind IN ('r', 'p')
), dep AS (
    SELECT DISTINCT d.classid, d.objid, d.deptype FROM pg_depend d
    WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid IN (SELECT oid FROM tab)
), vw AS (
    SELECT DISTINCT c.oid, c.relname::text AS name, c.relkind
    FROM dep JOIN pg_rewrite w ON dep.classid = 'pg_rewrite'::regclass AND w.oid = dep.objid
    JOIN pg_class c ON c.oid = w.ev_class
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('v', 'm')
), seq AS (
    SELECT c.oid, c.relname::text AS name, t.name AS owner FROM pg_depend d JOIN tab t ON t.oid = d.refobjid
    JOIN pg_class c ON c.oid = d.objid
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    AND c.relkind = 'S'
), fn AS (
    SELECT DISTINCT p.* FROM dep JOIN pg_proc p ON dep.classid = 'pg_proc'::regclass AND p.oid = dep.objid
    WHERE p.pronamespace = current_schema()::regnamespace AND p.prokind IN ('f', 'p')
)
"""
# Rows (kind, table, name, detail, group, a foreign key's table) of what the sources above give
# (the whole schema: also the schema's name, enum and domain types).
PG_FOUND = """
found (kind, tbl, name, detail, grp, refers) AS (
SELECT 'table', t.name, NULL, json_build_array(n.description), t.name, NULL
FROM tab t LEFT JOIN pg_description n ON n.objoid = t.oid AND n.classoid = 'pg_class'::regclass AND n.objsubid = 0
UNION ALL
SELECT 'column', t.name, a.attname::text, json_build_array(
    format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
    NULLIF(a.attidentity, ''), NULLIF(a.attgenerated, ''),
    CASE WHEN a.attcollation <> ty.typcollation THEN a.attcollation::regcollation::text END, n.description),
    t.name, NULL
FROM tab t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = t.oid AND d.adnum = a.attnum
LEFT JOIN pg_description n ON n.objoid = t.oid AND n.classoid = 'pg_class'::regclass AND n.objsubid = a.attnum
UNION ALL
SELECT 'constraint', t.name, k.conname::text, json_build_array(k.contype, pg_get_constraintdef(k.oid), n.description),
    t.name, f.relname::text
FROM tab t JOIN pg_constraint k ON k.conrelid = t.oid
LEFT JOIN pg_description n ON n.objoid = k.oid AND n.classoid = 'pg_constraint'::regclass
LEFT JOIN pg_class f ON f.oid = k.confrelid AND f.relnamespace = current_schema()::regnamespace
WHERE k.contype IN ('p', 'u', 'f', 'c', 'x')
UNION ALL
SELECT 'index', t.name, i.relname::text, json_build_array(pg_get_indexdef(x.indexrelid), n.description), t.name, NULL
FROM tab t JOIN pg_index x ON x.indrelid = t.oid JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_description n ON n.objoid = i.oid AND n.classoid = 'pg_class'::regclass AND n.objsubid = 0
WHERE NOT x.indisprimary
UNION ALL
SELECT 'trigger', t.name, g.tgname::text, json_build_array(pg_get_triggerdef(g.oid)), t.name, NULL
FROM tab t JOIN pg_trigger g ON g.tgrelid = t.oid WHERE NOT g.tgisinternal
UNION ALL
SELECT CASE relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, NULL, name,
       json_build_array(pg_get_viewdef(oid)), NULL, NULL
FROM vw WHERE NOT EXISTS (
    SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = vw.oid AND d.deptype = 'e')
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END, NULL,
       p.proname::text || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       json_build_array(pg_get_functiondef(p.oid)), NULL, NULL
FROM fn p WHERE NOT EXISTS (
    SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'sequence', NULL, r.name, json_build_array(
    format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle),
    r.owner, NULL
FROM seq r JOIN pg_sequence s ON s.seqrelid = r.oid
{whole}
)
SELECT grp, CASE WHEN grp IS NULL THEN kind END, CASE WHEN grp IS NULL THEN name END,
       json_agg(json_build_array(kind, tbl, name, detail)
                ORDER BY kind, tbl COLLATE "C", name COLLATE "C", detail::text COLLATE "C")::text,
       array_agg(DISTINCT refers) FILTER (WHERE refers IS NOT NULL), bool_or(kind = 'table')
FROM found GROUP BY 1, 2, 3
"""
PG_WHOLE_ONLY = """
UNION ALL
SELECT 'postgresql', NULL, current_schema()::text, json_build_array(), NULL, NULL
UNION ALL
SELECT 'enum', NULL, ty.typname::text, json_agg(e.enumlabel ORDER BY e.enumsortorder), NULL, NULL
FROM pg_type ty JOIN pg_enum e ON e.enumtypid = ty.oid
WHERE ty.typnamespace = current_schema()::regnamespace GROUP BY ty.oid, ty.typname
UNION ALL
SELECT 'domain', NULL, ty.typname::text, json_build_array(
    format_type(ty.typbasetype, ty.typtypmod), ty.typnotnull, ty.typdefault,
    CASE WHEN ty.typcollation <> base.typcollation THEN ty.typcollation::regcollation::text END,
    (SELECT json_agg(json_build_array(k.conname, pg_get_constraintdef(k.oid)) ORDER BY k.conname)
     FROM pg_constraint k WHERE k.contypid = ty.oid)), NULL, NULL
FROM pg_type ty JOIN pg_type base ON base.oid = ty.typbasetype
WHERE ty.typnamespace = current_schema()::regnamespace AND ty.typtype = 'd'
"""
POSTGRESQL = "WITH" + PG_WHOLE + "," + PG_FOUND.format(whole=PG_WHOLE_ONLY)
POSTGRESQL_SCOPED = "WITH" + PG_SCOPED + "," + PG_FOUND.format(whole="")

# The same for MariaDB; an index, a foreign key and a routine come one row per column or
# parameter, its position first. DATABASE() is the connection's database (in the query: one
# round trip per capture, not two). Each table's part of the catalog, with ``{table}`` for a
# condition on its name: MariaDB's information_schema opens only the table an equality names
# (an IN list, or none, opens them all).
MARIADB_TABLE_PARTS = (
    """SELECT 'table' AS kind, TABLE_NAME AS tbl, TABLE_TYPE AS name, JSON_ARRAY(TABLE_COMMENT) AS detail,
    TABLE_NAME AS grp, NULL AS refers
FROM information_schema.TABLES
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE'){table:TABLE_NAME}""",
    """SELECT 'column', TABLE_NAME, COLUMN_NAME, JSON_ARRAY(COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA,
    GENERATION_EXPRESSION, CHARACTER_SET_NAME, COLLATION_NAME, COLUMN_COMMENT), TABLE_NAME, NULL
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE(){table:TABLE_NAME}""",
    """SELECT 'index', TABLE_NAME, INDEX_NAME, JSON_ARRAY(SEQ_IN_INDEX, COLUMN_NAME, COLLATION, SUB_PART,
    NON_UNIQUE, INDEX_TYPE, INDEX_COMMENT), TABLE_NAME, NULL
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE(){table:TABLE_NAME}""",
    """SELECT 'foreign key', TABLE_NAME, CONSTRAINT_NAME, JSON_ARRAY(ORDINAL_POSITION, COLUMN_NAME,
    NULLIF(REFERENCED_TABLE_SCHEMA, TABLE_SCHEMA), REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME), TABLE_NAME,
    IF(REFERENCED_TABLE_SCHEMA = TABLE_SCHEMA, REFERENCED_TABLE_NAME, NULL)
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL{table:TABLE_NAME}""",
    """SELECT 'foreign key', TABLE_NAME, CONSTRAINT_NAME, JSON_ARRAY(0, UPDATE_RULE, DELETE_RULE), TABLE_NAME, NULL
FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE(){table:TABLE_NAME}""",
    """SELECT 'check', TABLE_NAME, CONSTRAINT_NAME, JSON_ARRAY(CHECK_CLAUSE), TABLE_NAME, NULL
FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE(){table:TABLE_NAME}""",
    """SELECT 'trigger', EVENT_OBJECT_TABLE, TRIGGER_NAME, JSON_ARRAY(ACTION_TIMING, EVENT_MANIPULATION,
    ACTION_ORIENTATION, ACTION_STATEMENT), EVENT_OBJECT_TABLE, NULL
FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE(){table:EVENT_OBJECT_TABLE}""",
)
# The objects of no table (views, routines): in the whole schema's capture only. No operation
# of Alembic's makes or changes one, and MariaDB keeps a view's text as written (a table it
# names renamed or dropped leaves it unchanged, and invalid).
MARIADB_OTHER_PARTS = (
    "SELECT 'mariadb', NULL, NULL, JSON_ARRAY(), NULL, NULL",
    """SELECT 'view', NULL, TABLE_NAME, JSON_ARRAY(ALGORITHM, SECURITY_TYPE, CHECK_OPTION,
    REPLACE(VIEW_DEFINITION, CONCAT('`', TABLE_SCHEMA, '`.'), '')), NULL, NULL
FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()""",
    """SELECT LOWER(ROUTINE_TYPE), NULL, ROUTINE_NAME, JSON_ARRAY(0, DTD_IDENTIFIER, IS_DETERMINISTIC, SQL_DATA_ACCESS,
    SECURITY_TYPE, ROUTINE_COMMENT, ROUTINE_DEFINITION), NULL, NULL
FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()""",
    """SELECT LOWER(ROUTINE_TYPE), NULL, SPECIFIC_NAME, JSON_ARRAY(ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME,
    DTD_IDENTIFIER), NULL, NULL
FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = DATABASE() AND ORDINAL_POSITION > 0""",
)
# One text, every row in it, grouped in Python (``_grouped``): a GROUP BY here made MariaDB
# 10.11 crash (signal 11, freeing the temporary table of the groups' GROUP_CONCAT).
MARIADB_GROUPED = """
SET STATEMENT group_concat_max_len = 4294967295 FOR
SELECT CONCAT('[', GROUP_CONCAT(JSON_ARRAY(grp, kind, tbl, name, detail, refers)
       ORDER BY BINARY grp, BINARY kind, BINARY tbl, BINARY name, BINARY detail SEPARATOR ','), ']')
FROM (
{parts}
) AS found
"""


def mariadb_query(tables: int | None) -> str:
    """The whole schema (``tables`` None), or the parts of ``tables`` tables, named by the
    parameters t0, t1, ..."""
    if tables is None:
        parts = [part.format(table=_Condition(None)) for part in MARIADB_TABLE_PARTS] + list(MARIADB_OTHER_PARTS)
    else:
        parts = [part.format(table=_Condition(f"t{n}")) for n in range(tables) for part in MARIADB_TABLE_PARTS]
    return MARIADB_GROUPED.format(parts="\nUNION ALL\n".join(parts))


class _Condition:
    """``{table:COLUMN}`` in a part: that COLUMN equals the parameter, or no condition (None)."""

    def __init__(self, parameter: str | None) -> None:
        self.parameter = parameter

    def __format__(self, column: str) -> str:
        return "" if self.parameter is None else f" AND {column} = :{self.parameter}"


class Catalog:
    """The schema in parts: one JSON text per table (its columns, keys, indexes, triggers, and the
    sequences it owns) and per other object. Equal catalogs (their parts): equal schemas."""

    __slots__ = ("parts", "refers", "table_names", "_tables")

    def __init__(self, parts: dict[Any, str], refers: dict[str, frozenset[str]], table_names: frozenset[str]) -> None:
        self.parts = parts
        self.refers = refers  # a table: the tables its foreign keys refer to
        self.table_names = table_names
        self._tables: list[str] | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Catalog) and self.parts == other.parts

    __hash__ = None  # type: ignore[assignment]

    @property
    def tables(self) -> list[str]:
        """The tables, sorted, Alembic's version tables left out."""
        if self._tables is None:
            self._tables = sorted(self.table_names - version_tables())
        return self._tables

    def referring(self, tables: Collection[str]) -> set[str]:
        """The tables whose foreign keys refer to one of ``tables``."""
        named = set(tables)
        return {table for table, referred in self.refers.items() if not referred.isdisjoint(named)}


def catalog(
    connection: Connection, tables: Collection[str] | None = None, base: Catalog | None = None
) -> Catalog | None:
    """The schema of the connection's database from one query: PostgreSQL and MariaDB. None
    elsewhere (SQLite has ``sqlite_catalog()``; MySQL, whose information_schema differs
    from MariaDB's, is reflected). With ``tables`` and ``base``, a capture of what changed
    since ``base``: its parts, those of these tables read again (and of the tables whose
    foreign keys refer to one of them, the views and functions that depend on them)."""
    dialect = connection.dialect
    postgresql = dialect.name == "postgresql"
    if not postgresql and not (dialect.name in ("mysql", "mariadb") and getattr(dialect, "is_mariadb", False)):
        return None
    scope: set[str] = set()
    if tables is None or base is None:
        query, parameters = (POSTGRESQL if postgresql else mariadb_query(None)), {}
    else:
        scope = set(tables) | base.referring(tables)
        if not scope:
            return base
        names = sorted(scope)
        if postgresql:
            query, parameters = POSTGRESQL_SCOPED, {"tables": names}
        else:
            query, parameters = mariadb_query(len(names)), {f"t{n}": name for n, name in enumerate(names)}
    parts: dict[Any, str] = {}
    refers: dict[str, frozenset[str]] = {}
    table_names: set[str] = set()
    found = _rows(connection, query, parameters) if postgresql else _grouped(connection, query, parameters)
    for group, kind, name, part, referred, is_table in found:
        parts[group if group is not None else (kind, name)] = part
        if group is not None:
            if referred:
                refers[group] = frozenset(referred)
            if is_table:
                table_names.add(group)
    if base is None or tables is None:
        return Catalog(parts, refers, frozenset(table_names))
    merged = {key: part for key, part in base.parts.items() if key not in scope}
    merged.update(parts)
    merged_refers = {table: referred for table, referred in base.refers.items() if table not in scope}
    merged_refers.update(refers)
    return Catalog(merged, merged_refers, (base.table_names - scope) | table_names)


def _grouped(connection: Connection, query: str, parameters: dict[str, Any]) -> list[Any]:
    """MariaDB's one text as PostgreSQL's rows: (group, kind and name of an object of no
    table, the group's rows as one JSON text, the tables its foreign keys refer to, whether it
    is a table)."""
    text_ = connection.execute(_statement(query), parameters).scalar()
    groups: dict[Any, list[Any]] = {}
    for group, kind, table, name, detail, referred in json.loads(text_ or "[]"):
        key = (group, None, None) if group is not None else (None, kind, name)
        groups.setdefault(key, []).append((kind, table, name, detail, referred))
    found = []
    for (group, kind, name), rows in groups.items():
        part = json.dumps([row[:4] for row in rows])
        referred = sorted({row[4] for row in rows if row[4] is not None})
        is_table = any(row[0] == "table" and row[2] == "BASE TABLE" for row in rows)
        found.append((group, kind, name, part, referred, is_table))
    return found


@cache
def _statement(query: str) -> TextClause:
    return text(query)


def _rows(connection: Connection, query: str, parameters: dict[str, Any]) -> list[Any]:
    """The query's rows. A scoped capture on PostgreSQL through psycopg runs a statement
    prepared once per session: planning the query costs several times as much as running
    it, and after five runs the server keeps one plan for any tables (see ``_prepared``)."""
    names = parameters.get("tables", ())
    if query is POSTGRESQL_SCOPED and all(_PLAIN_NAME.match(name) for name in names) and _prepared(connection):
        quoted = ", ".join(f"'{name}'" for name in names)
        return connection.exec_driver_sql(f"EXECUTE {PREPARED}(ARRAY[{quoted}]::name[])").all()
    return connection.execute(_statement(query), parameters).all()


PREPARED = "alembic_cookbook_catalog"
_PLAIN_NAME = re.compile(r"[^'\\\x00]*\Z")  # written between quotes as it is


def _prepared(connection: Connection) -> bool:
    """Whether this session has the scoped catalog query prepared (prepared now if not).
    psycopg deallocates every prepared statement of the session after a DROP or an ALTER
    once it prepared one of its own: it is told to prepare none on this connection (the
    walk's, which runs the revisions: they run as before, planned each time)."""
    driver = getattr(connection.connection, "dbapi_connection", None)
    if connection.dialect.driver != "psycopg" or not hasattr(driver, "prepare_threshold"):
        return False
    driver.prepare_threshold = None
    found = connection.exec_driver_sql(f"SELECT FROM pg_prepared_statements WHERE name = '{PREPARED}'").first()
    if found is None:
        body = POSTGRESQL_SCOPED.replace("CAST(:tables AS name[])", "$1")
        connection.exec_driver_sql(f"PREPARE {PREPARED}(name[]) AS {body}")
    return True


def pictured(found: Catalog) -> dict[str, Any]:
    """A ``catalog()`` as ``snapshot()`` shapes its picture: tables, then the other objects."""
    rows = [row for part in found.parts.values() for row in json.loads(part)]
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
