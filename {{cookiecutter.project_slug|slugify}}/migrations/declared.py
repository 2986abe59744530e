"""Autogenerate for declared objects: compare the app's views, functions, procedures and
triggers (declared with ``View(...)``, ``Function(...)``... on its MetaData) with the database.

New -> ``op.create_*``; changed -> ``op.replace_*`` with the old definition written into
the revision (its downgrade needs no older file, so pruning is safe); gone -> ``op.drop_*``.

Definitions are compared as the database itself renders them, so a different layout of
the same SQL is no change: the declared SQL is created in a scratch place and read back.
- PostgreSQL: inside a savepoint, in a shadow schema first on the search_path, rolled back.
- MariaDB/MySQL: under temporary names, dropped at once (its DDL cannot be rolled back).
- SQLite: it stores the statement as written; whitespace is folded.

Scope: the objects the app declares, in the default schema. An object in the database
that the app does not declare is left alone: a view a revision makes with
``op.create_view`` (the cookbook's own way) is the history's, not something to drop. To
have autogenerate drop what the models no longer declare, say that every view, function,
procedure and trigger in the database is the app's::

    metadata = declare_replaceable_objects(MetaData(...), drop_undeclared=True)

Then a view made only in a revision is proposed for dropping too: declare it as well.
"""

from __future__ import annotations

import re

from alembic.autogenerate import comparators, renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.exc import DBAPIError

from migrations.failures import error_codes
from migrations.replaceable import (
    CREATE_OPS,
    DROP_OPS,
    FUNCTION,
    KINDS,
    OPERATION_NAMES,
    PROCEDURE,
    REGISTRY_KEY,
    TRIGGER,
    Kind,
    ReplaceableObject,
    ReplaceOp,
    ReversibleOp,
    base_name,
    declared_objects,
    execute,
    trigger_table,
)

Key = tuple[str, str]  # (kind label, name as the database identifies it)


# --- Comparing --------------------------------------------------------------------------


@comparators.dispatch_for("schema")
def compare_declared_objects(autogen_context: AutogenContext, upgrade_ops: ops.UpgradeOps, schemas) -> None:
    metadatas = autogen_context.metadata
    metadatas = metadatas if isinstance(metadatas, (list, tuple)) else [metadatas]
    tracked = [metadata for metadata in metadatas if metadata is not None and REGISTRY_KEY in metadata.info]
    if not tracked:
        return
    declared = [obj for metadata in tracked for obj in declared_objects(metadata)]
    drop_undeclared = any(metadata.info.get(DROP_UNDECLARED_KEY) for metadata in tracked)
    if not declared and not drop_undeclared:
        return
    connection = autogen_context.connection
    dialect = connection.dialect.name
    for obj in declared:
        obj.kind.check(dialect, obj)
    reader = READERS[dialect]
    existing = reader.existing(connection)  # key -> (object as the database has it, normalised text)
    wanted = reader.declared(connection, declared)  # key -> (declared object, normalised text)
    for key in [key for key in existing if key not in wanted and drop_undeclared][::-1]:
        old, _ = existing[key]
        upgrade_ops.ops.append(DROP_OPS[kind_of(key)](old))
    for key, (new, normalised) in wanted.items():
        if key not in existing:
            upgrade_ops.ops.append(CREATE_OPS[new.kind](ReplaceableObject(new.name, new.sqltext)))
        elif normalised is None or existing[key][1] != normalised:  # None: see unrenderable()
            old = existing[key][0]
            upgrade_ops.ops.append(ReplaceOp(new.kind, old, ReplaceableObject(new.name, new.sqltext)))


def in_dependency_order(operations: ops.OpContainer) -> None:
    """Autogenerate compares declared objects before tables: put their drops first, and their
    creates and replaces last, after the tables they may read are made or changed."""

    def rank(operation) -> int:
        if isinstance(operation, ReversibleOp):
            return 2 if operation.creates else 0
        return 2 if isinstance(operation, ReplaceOp) else 1

    operations.ops.sort(key=rank)  # stable: each group keeps its order


def kind_of(key: Key) -> Kind:
    return next(kind for kind in KINDS if kind.label == key[0])


DROP_UNDECLARED_KEY = "replaceable_objects_drop_undeclared"


def declare_replaceable_objects(metadata: MetaData, drop_undeclared: bool = False) -> MetaData:
    """Have autogenerate compare this MetaData's declared objects with the database (a View
    or Function declared on it does this too). ``drop_undeclared``: every view, function,
    procedure and trigger in the database is the app's, and one the models do not declare
    (any more) is proposed for dropping, a view made only in a revision too."""
    metadata.info.setdefault(REGISTRY_KEY, {})
    metadata.info[DROP_UNDECLARED_KEY] = drop_undeclared
    return metadata


def fold(sql: str) -> str:
    return " ".join(sql.split()).rstrip(";").strip()


# --- PostgreSQL ---------------------------------------------------------------------------

SHADOW = "alembic_cookbook_shadow"

PG_OBJECTS = """
    SELECT c.oid, 'view', c.relname::text, c.relname::text, pg_get_viewdef(c.oid) FROM pg_class c
    WHERE c.relnamespace = CAST(:schema AS regnamespace) AND c.relkind = 'v' {not_extension_c}
    UNION ALL
    SELECT c.oid, 'materialized view', c.relname::text, c.relname::text, pg_get_viewdef(c.oid) FROM pg_class c
    WHERE c.relnamespace = CAST(:schema AS regnamespace) AND c.relkind = 'm' {not_extension_c}
    UNION ALL
    SELECT p.oid, CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
           p.proname::text || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           p.proname::text || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           pg_get_functiondef(p.oid)
    FROM pg_proc p WHERE p.pronamespace = CAST(:schema AS regnamespace) AND p.prokind IN ('f', 'p')
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                    AND d.deptype = 'e')
    UNION ALL
    SELECT t.oid, 'trigger', t.tgname::text, t.tgname::text || ' ON ' || c.relname::text, pg_get_triggerdef(t.oid)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE NOT t.tgisinternal AND c.relnamespace = CAST(:schema AS regnamespace) {trigger_filter}
""".replace(
    "{not_extension_c}",
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
    "AND d.objid = c.oid AND d.deptype = 'e')",
)


class PostgreSQL:
    @staticmethod
    def _read(connection: Connection, schema: str, triggers: list[str] | None = None) -> dict:
        """(label, key name) -> (oid, name, definition), in creation (oid) order.

        With ``triggers``: only the triggers of those names.
        """
        trigger_filter = "" if triggers is None else "AND t.tgname = ANY(:triggers)"
        sql = PG_OBJECTS.replace("{trigger_filter}", trigger_filter) + " ORDER BY 1"
        params = {"schema": schema} | ({} if triggers is None else {"triggers": triggers})
        rows = connection.execute(text(sql), params)
        return {
            (label, key_name): (oid, name, definition)
            for oid, label, name, key_name, definition in rows
            if triggers is None or label == "trigger"
        }

    @classmethod
    def existing(cls, connection: Connection) -> dict:
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        return {
            key: (as_object(key[0], name, definition, schema), normalise_pg(definition, schema))
            for key, (_oid, name, definition) in cls._read(connection, schema).items()
        }

    @classmethod
    def declared(cls, connection: Connection, declared: list) -> dict:
        """Create the declared objects in a shadow schema, read them back, roll back."""
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        triggers = [base_name(obj.name) for obj in declared if obj.kind is TRIGGER]
        with connection.begin_nested() as savepoint:
            execute(connection, f"CREATE SCHEMA {SHADOW}")
            search_path = f"SELECT set_config('search_path', '{SHADOW}, ' || current_setting('search_path'), true)"
            connection.execute(text(search_path))
            statements = {}
            for index, obj in enumerate(declared):
                statements[index] = [obj.kind.create(obj)]
                if obj.kind is TRIGGER:  # triggers belong to the real tables: replace them there
                    statements[index].insert(0, f"DROP TRIGGER IF EXISTS {obj.name} ON {trigger_table(obj)}")
            failed = create_all_at_once(connection, statements)
            shadow = cls._read(connection, SHADOW)
            shadow.update(cls._read(connection, schema, triggers))
            savepoint.rollback()
        # Routines are matched in creation order (overloads share a name); the rest by name.
        routines = iter(
            sorted((oid, key) for key, (oid, _, _) in shadow.items() if key[0] in ("function", "procedure"))
        )
        result = {}
        for index, obj in enumerate(declared):
            if index in failed:
                result[(obj.kind.label, base_name(obj.name))] = unrenderable(obj)
                continue
            if obj.kind in (FUNCTION, PROCEDURE):
                key = next(routines)[1]
            elif obj.kind is TRIGGER:
                key = next(k for k in shadow if k[0] == "trigger" and k[1].split(" ON ")[0] == base_name(obj.name))
            else:
                key = (obj.kind.label, base_name(obj.name))
            definition = shadow[key][2]
            result[key] = (obj, normalise_pg(definition, schema if obj.kind is TRIGGER else SHADOW))
        return result


def create_all_at_once(connection: Connection, statements: dict[int, list[str]]) -> set[int]:
    """One round trip for all of them; if that fails, each object's statements on their own.
    Returns the objects the database could not create (see ``unrenderable``)."""
    batch = ";\n".join(statement for group in statements.values() for statement in group)
    if connection.dialect.paramstyle in ("format", "pyformat"):  # psycopg reads % as a placeholder
        batch = batch.replace("%", "%%")
    try:
        with connection.begin_nested():
            connection.exec_driver_sql(batch)
        return set()
    except DBAPIError:
        pass
    failed = set()
    for index, group in statements.items():
        try:
            with connection.begin_nested():
                for statement in group:
                    execute(connection, statement)
        except DBAPIError as error:
            if not missing_table(error):
                raise  # the declared SQL itself is wrong: say so now
            failed.add(index)
    return failed


def missing_table(error: DBAPIError) -> bool:
    """The statement refers to a table that is not there (yet): SQLSTATE 42P01 (PostgreSQL)
    or 42S02, error 1146 (MariaDB)."""
    return bool(error_codes(error) & {"42P01", "42S02", 1146})


def unrenderable(obj: ReplaceableObject) -> tuple[ReplaceableObject, None]:
    """A declared object the database cannot create as things are, e.g. a view on a table that
    this autogenerate is about to create: compared as "changed" (or new), never as equal."""
    return obj, None


def normalise_pg(definition: str, schema: str) -> str:
    return fold(definition.replace(f" {schema}.", " ").replace(f'"{schema}".', ""))


def as_object(label: str, name: str, definition: str, schema: str) -> ReplaceableObject:
    """The object as the database has it, in the form ``op.create_*`` takes."""
    if label in ("view", "materialized view"):
        return ReplaceableObject(name, definition.strip().rstrip(";"))
    if label in ("function", "procedure"):
        return ReplaceableObject(name, definition.split("\n", 1)[1].strip())
    body = re.sub(rf"^CREATE (?:OR REPLACE )?(?:CONSTRAINT )?TRIGGER {re.escape(name)} ", "", definition)
    return ReplaceableObject(name, body.replace(f" {schema}.", " "))


# --- MariaDB / MySQL -----------------------------------------------------------------------

MYSQL_OBJECTS = """
    SELECT 'view', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()
    UNION ALL
    SELECT LOWER(ROUTINE_TYPE), ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()
    UNION ALL
    SELECT 'trigger', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()
"""
SHOW_COLUMN = {"view": 1, "function": 2, "procedure": 2, "trigger": 2}
TEMPORARY = "cbtmp_"


class MySQL:
    @staticmethod
    def _show(connection: Connection, label: str, name: str) -> str:
        row = connection.exec_driver_sql(f"SHOW CREATE {label.upper()} `{name}`").first()
        statement = row[SHOW_COLUMN[label]]
        return re.sub(r"DEFINER=`[^`]*`@`[^`]*`\s*", "", statement)

    @classmethod
    def existing(cls, connection: Connection) -> dict:
        result = {}
        for label, name in connection.execute(text(MYSQL_OBJECTS)):
            if name.startswith(TEMPORARY):
                continue
            statement = cls._show(connection, label, name)
            result[(label, name)] = (mysql_object(label, name, statement), fold(statement))
        return result

    @classmethod
    def declared(cls, connection: Connection, declared: list) -> dict:
        temporary = {
            base_name(obj.name): f"{TEMPORARY}{index}_{base_name(obj.name)}"[:64] for index, obj in enumerate(declared)
        }
        to_temporary = renamer(temporary)
        back = renamer({new: old for old, new in temporary.items()})
        made: list[tuple[Kind, str]] = []
        result = {}
        try:
            for obj in declared:
                renamed = ReplaceableObject(temporary[base_name(obj.name)], to_temporary(obj.sqltext))
                try:
                    execute(connection, obj.kind.create(renamed))
                except DBAPIError as error:
                    if not missing_table(error):
                        raise
                    result[(obj.kind.label, base_name(obj.name))] = unrenderable(obj)
                    continue
                made.append((obj.kind, renamed.name))
                statement = cls._show(connection, obj.kind.label, renamed.name)
                result[(obj.kind.label, base_name(obj.name))] = (obj, fold(back(statement)))
        finally:
            for kind, name in reversed(made):
                execute(connection, kind.drop(ReplaceableObject(name, ""), "mysql"))
        return result


def renamer(names: dict[str, str]):
    """A function that replaces each of these names, as a whole word, in one pass."""
    if not names:
        return lambda sql: sql
    words = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w$])({words})(?![\w$])")
    return lambda sql: pattern.sub(lambda match: names[match.group(1)], sql)


def mysql_object(label: str, name: str, statement: str) -> ReplaceableObject:
    """Split ``SHOW CREATE ...`` into the name and the SQL that ``op.create_*`` takes."""
    head = r"\bVIEW\s+`?[^`\s]+`?\s+AS\s+" if label == "view" else rf"\b{label}\s+`?{re.escape(name)}`?\s*"
    return ReplaceableObject(name, re.split(head, statement, maxsplit=1, flags=re.IGNORECASE)[1])


# --- SQLite -------------------------------------------------------------------------------


class SQLite:
    @staticmethod
    def existing(connection: Connection) -> dict:
        rows = connection.execute(
            text(
                "SELECT type, name, sql FROM sqlite_master"
                " WHERE type IN ('view', 'trigger') AND name NOT LIKE 'sqlite_%'"
            )
        )
        result = {}
        for label, name, sql in rows:
            keyword = "VIEW" if label == "view" else "TRIGGER"
            body = re.split(rf"^\s*CREATE\s+{keyword}\s+{re.escape(name)}\s+(?:AS\s+)?", sql, maxsplit=1, flags=re.I)[
                -1
            ]
            result[(label, name)] = (ReplaceableObject(name, body), fold(sql))
        return result

    @staticmethod
    def declared(connection: Connection, declared: list) -> dict:
        return {(obj.kind.label, obj.name): (obj, fold(obj.kind.create(obj))) for obj in declared}


READERS = {"postgresql": PostgreSQL, "mysql": MySQL, "mariadb": MySQL, "sqlite": SQLite}


# --- Writing the revision -----------------------------------------------------------------


LITERAL_WIDTH = 80  # characters of SQL per string: the revision's lines stay within its linter's limit


def literal(sql: str) -> str:
    """The SQL as a Python literal, exactly: one string per line, a long line cut after a
    space into strings of about LITERAL_WIDTH characters, so that indenting the generated
    code never changes the SQL (whitespace can matter in a function body) and no line of
    the revision is too long for ruff (which cannot wrap a string)."""
    pieces = [piece for line in sql.strip().splitlines(keepends=True) for piece in cut(line)]
    if len(pieces) <= 1:
        return repr(sql.strip())
    return "(\n" + "\n".join(f"    {piece!r}" for piece in pieces) + "\n)"


def cut(line: str) -> list[str]:
    """``line`` in pieces of about LITERAL_WIDTH characters, each ending after a space; joined,
    they are ``line`` again."""
    if len(line) <= LITERAL_WIDTH:
        return [line]
    pieces, current = [], ""
    for word in re.split(r"(?<= )", line):
        if current and len(current) + len(word) > LITERAL_WIDTH:
            pieces.append(current)
            current = ""
        current += word
    return [*pieces, current] if current else pieces


def render_object(autogen_context: AutogenContext, obj: ReplaceableObject) -> str:
    autogen_context.imports.add("from migrations.replaceable import ReplaceableObject")
    return f"ReplaceableObject({obj.name!r}, {literal(obj.sqltext)})"


@renderers.dispatch_for(ReversibleOp)
def render_create_or_drop(autogen_context: AutogenContext, operation: ReversibleOp) -> str:
    verb = "create" if operation.creates else "drop"
    return f"op.{verb}_{OPERATION_NAMES[operation.kind][0]}({render_object(autogen_context, operation.target)})"


@renderers.dispatch_for(ReplaceOp)
def render_replace(autogen_context: AutogenContext, operation: ReplaceOp) -> str:
    name = OPERATION_NAMES[operation.kind][0]
    new, old = render_object(autogen_context, operation.new), render_object(autogen_context, operation.old)
    return f"op.replace_{name}(\n    {new},\n    replaces={old},\n)"


def _diff(self) -> tuple:
    verb = "add" if getattr(self, "creates", True) else "remove"
    if isinstance(self, ReplaceOp):
        return ("replace_" + self.kind.label.replace(" ", "_"), self.new.name)
    return (f"{verb}_{self.kind.label.replace(' ', '_')}", self.target.name)


ReversibleOp.to_diff_tuple = _diff  # what `alembic check` lists
ReplaceOp.to_diff_tuple = _diff
