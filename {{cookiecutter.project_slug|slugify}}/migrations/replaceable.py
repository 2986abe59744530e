"""Cookbook recipe 4, replaceable objects: views, functions, procedures and triggers as ``op.*``.

A replaceable object is created and dropped whole. A revision declares it once::

    customer_view = ReplaceableObject("customer_view", "SELECT name FROM customer")

    def upgrade():
        op.create_view(customer_view)

and a later revision that changes it names the revision holding the previous definition,
so that its downgrade can put that definition back::

    op.replace_view(customer_view, replaces="28af9800143f.customer_view")      # upgrade
    op.replace_view(customer_view, replace_with="28af9800143f.customer_view")  # downgrade

``replaces=`` / ``replace_with=`` also take a ReplaceableObject itself: autogenerate writes
the old definition into the revision, which then needs no older revision file.

Operations (env.py imports this module, which registers them):

    kind               operations                                             databases
    view               create_view, drop_view, replace_view                   all
    materialized view  create_materialized_view, drop_..., replace_...        PostgreSQL
    function           create_sp, drop_sp, replace_sp (or create_function...) PostgreSQL, MariaDB, MySQL
    procedure          create_procedure, drop_procedure, replace_procedure    PostgreSQL, MariaDB, MySQL
    trigger            create_trigger, drop_trigger, replace_trigger          all

A kind the database lacks is an error naming both. Replacing uses CREATE OR REPLACE where
the database can; where it cannot (a PostgreSQL view losing a column, a materialized
view), the views that depend on it are dropped and recreated around it, with their
indexes, triggers, grants and comments (and the replaced view keeps its own).

The app can also *declare* its current objects next to its models, like a Table::

    View("customer_view", metadata, "SELECT name FROM customer")

create_db.py creates declared objects, and autogenerate compares them with the database
(see migrations/declared.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

from alembic.operations import MigrateOperation, Operations
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.exc import DBAPIError

ALL = frozenset({"postgresql", "mysql", "mariadb", "sqlite"})
SERVERS = frozenset({"postgresql", "mysql", "mariadb"})


@dataclass
class ReplaceableObject:
    """A named piece of SQL for a CREATE statement: a view's SELECT, a function's body."""

    name: str
    sqltext: str


# --- What each kind's SQL looks like -------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    label: str  # "view", "function", ...: in messages and op names
    keyword: str  # the word after CREATE / DROP
    dialects: frozenset[str]
    or_replace: frozenset[str]  # where CREATE OR REPLACE works

    def create(self, obj: ReplaceableObject, or_replace: bool = False) -> str:
        verb = "CREATE OR REPLACE" if or_replace else "CREATE"
        middle = " AS " if self.keyword.endswith("VIEW") else " "
        return f"{verb} {self.keyword} {obj.name}{middle}{obj.sqltext.strip()}"

    def drop(self, obj: ReplaceableObject, dialect: str) -> str:
        name = obj.name
        if self.keyword in ("FUNCTION", "PROCEDURE") and dialect != "postgresql":
            name = base_name(name)  # MariaDB drops routines by name alone
        if self.keyword == "TRIGGER" and dialect == "postgresql":
            return f"DROP TRIGGER {name} ON {trigger_table(obj)}"
        return f"DROP {self.keyword} {name}"

    def check(self, dialect: str, obj: ReplaceableObject) -> None:
        if dialect not in self.dialects:
            raise CommandError(f"{obj.name!r}: a {self.label} is not supported on {dialect}.")


VIEW = Kind("view", "VIEW", ALL, frozenset({"postgresql", "mysql", "mariadb"}))
MATERIALIZED_VIEW = Kind("materialized view", "MATERIALIZED VIEW", frozenset({"postgresql"}), frozenset())
# CREATE OR REPLACE for routines and triggers is MariaDB's; MySQL has it for views only.
FUNCTION = Kind("function", "FUNCTION", SERVERS, frozenset({"postgresql", "mariadb"}))
PROCEDURE = Kind("procedure", "PROCEDURE", SERVERS, frozenset({"postgresql", "mariadb"}))
TRIGGER = Kind("trigger", "TRIGGER", ALL, frozenset({"mariadb"}))
KINDS = (FUNCTION, PROCEDURE, VIEW, MATERIALIZED_VIEW, TRIGGER)


def base_name(name: str) -> str:
    """``public.add_customer_sp(a int)`` -> ``add_customer_sp``."""
    return name.partition("(")[0].strip().rpartition(".")[2].strip('"`')


def trigger_table(obj: ReplaceableObject) -> str:
    match = re.search(r"\bON\s+([\w.\"`]+)", obj.sqltext, re.IGNORECASE)
    if not match:
        raise CommandError(f"trigger {obj.name!r}: its SQL names no table (expected '... ON <table> ...').")
    return match.group(1)


def execute(runner: Operations | Connection, sql: str) -> None:
    """Run DDL text as written: colons are not bind parameters (``'10:30'``, ``::int``)."""
    if isinstance(runner, Operations) and runner.get_context().as_sql:
        context = runner.get_context()
        if context.dialect.name in ("mysql", "mariadb") and ";" in sql:
            # The mariadb/mysql client ends a statement at each ';': a routine or trigger
            # body with several statements needs another delimiter in a SQL file.
            context.impl.static_output(f"DELIMITER //\n{sql.strip()}\n//\nDELIMITER ;\n")
            return
    runner.execute(text(sql.replace(":", r"\:")))


# --- The operations ------------------------------------------------------------------------


class ReversibleOp(MigrateOperation):
    """Create or drop one ReplaceableObject of one kind."""

    kind: ClassVar[Kind]
    creates: ClassVar[bool]
    partner: ClassVar[type[ReversibleOp]]

    def __init__(self, target: ReplaceableObject) -> None:
        self.target = target

    @classmethod
    def invoke_for_target(cls, operations: Operations, target: ReplaceableObject):
        return operations.invoke(cls(target))

    def reverse(self) -> ReversibleOp:
        return self.partner(self.target)

    @classmethod
    def _get_object_from_version(cls, operations: Operations, ident: str | ReplaceableObject) -> ReplaceableObject:
        """The object ``"<revision>.<name>"`` refers to; the name may be schema-qualified."""
        if isinstance(ident, ReplaceableObject):
            return ident
        version, _, name = ident.partition(".")
        if not version or not name:
            raise CommandError(f"{ident!r}: expected '<revision>.<name>', e.g. '28af9800143f.customer_view'.")
        try:
            revision = operations.get_context().script.get_revision(version)
        except (CommandError, RevisionError):
            revision = None
        if revision is None:  # squashed (migrations/squash.py): the revision that replaced it has the object
            revision = next(
                (each for each in operations.get_context().script.walk_revisions() if _squashes(each, version)), None
            )
        if revision is None:
            raise CommandError(
                f"{ident!r}: there is no revision {version!r} in this migration history "
                "(if it was pruned, write the old definition in place of the reference)."
            )
        found = (getattr(revision.module, "replaced_objects", None) or {}).get(ident)  # as the squashed one had it
        found = found if found is not None else object_in_module(revision.module, name)
        if found is None:
            raise CommandError(f"{ident!r}: revision {version} defines no ReplaceableObject {name!r}.")
        return found

    @classmethod
    def replace(cls, operations: Operations, target: ReplaceableObject, replaces=None, replace_with=None):
        if replaces:
            old, new = cls._get_object_from_version(operations, replaces), target
        elif replace_with:
            old, new = target, cls._get_object_from_version(operations, replace_with)
        else:
            raise TypeError("replaces or replace_with is required")
        return operations.invoke(ReplaceOp(cls.kind, old, new))


class ReplaceOp(MigrateOperation):
    """Put ``new`` in the place of ``old``; the reverse puts ``old`` back."""

    def __init__(self, kind: Kind, old: ReplaceableObject, new: ReplaceableObject) -> None:
        self.kind, self.old, self.new = kind, old, new

    def reverse(self) -> ReplaceOp:
        return ReplaceOp(self.kind, self.new, self.old)


def object_in_module(module: object, name: str) -> ReplaceableObject | None:
    """The ReplaceableObject a revision module holds as ``name``, or, failing that, whose
    object name is ``name`` ("public.customer_view" finds "customer_view")."""
    found = getattr(module, name, None)
    if isinstance(found, ReplaceableObject):
        return found
    wanted = {name, name.rpartition(".")[2]}
    candidates = [value for value in vars(module).values() if isinstance(value, ReplaceableObject)]
    return next((value for value in candidates if value.name.partition("(")[0].strip() in wanted), None)


def _squashes(revision, version: str) -> bool:
    squashed = getattr(revision.module, "squashes", ()) or ()
    return any(old == version or (len(version) >= 4 and old.startswith(version)) for old in squashed)


OPERATION_NAMES = {
    VIEW: ["view"],
    MATERIALIZED_VIEW: ["materialized_view"],
    FUNCTION: ["sp", "function"],
    PROCEDURE: ["procedure"],
    TRIGGER: ["trigger"],
}
COOKBOOK_CLASS_NAMES = {VIEW: "View", FUNCTION: "SP"}
CREATE_OPS: dict[Kind, type[ReversibleOp]] = {}
DROP_OPS: dict[Kind, type[ReversibleOp]] = {}

for _kind, _names in OPERATION_NAMES.items():
    _title = COOKBOOK_CLASS_NAMES.get(_kind, _kind.label.title().replace(" ", ""))
    _create = type(f"Create{_title}Op", (ReversibleOp,), {"kind": _kind, "creates": True, "__module__": __name__})
    _drop = type(f"Drop{_title}Op", (ReversibleOp,), {"kind": _kind, "creates": False, "__module__": __name__})
    _create.partner, _drop.partner = _drop, _create
    for _name in _names:
        Operations.register_operation(f"create_{_name}", "invoke_for_target")(_create)
        Operations.register_operation(f"replace_{_name}", "replace")(_create)
        Operations.register_operation(f"drop_{_name}", "invoke_for_target")(_drop)
    CREATE_OPS[_kind], DROP_OPS[_kind] = _create, _drop
    globals()[_create.__name__], globals()[_drop.__name__] = _create, _drop


def _dialect(operations: Operations) -> str:
    return operations.get_context().dialect.name


def _flavour(operations: Operations) -> str:
    """The dialect's name, but "mariadb" for MariaDB (SQLAlchemy calls both "mysql")."""
    dialect = operations.get_context().dialect
    return "mariadb" if getattr(dialect, "is_mariadb", False) else dialect.name


@Operations.implementation_for(ReversibleOp)  # and so for every Create*/Drop* class
def create_or_drop(operations: Operations, operation: ReversibleOp) -> None:
    dialect = _dialect(operations)
    operation.kind.check(dialect, operation.target)
    kind, target = operation.kind, operation.target
    execute(operations, kind.create(target) if operation.creates else kind.drop(target, dialect))


@Operations.implementation_for(ReplaceOp)
def replace(operations: Operations, operation: ReplaceOp) -> None:
    kind, old, new = operation.kind, operation.old, operation.new
    dialect = _dialect(operations)
    kind.check(dialect, new)
    context = operations.get_context()
    same_object = old.name == new.name or (kind.keyword in ("FUNCTION", "PROCEDURE") and dialect != "postgresql")
    if same_object and _flavour(operations) in kind.or_replace:
        if context.as_sql or dialect != "postgresql":
            execute(operations, kind.create(new, or_replace=True))
            return
        connection = operations.get_bind()
        try:  # PostgreSQL refuses some replacements (a view losing a column): try in a savepoint
            with connection.begin_nested():
                execute(connection, kind.create(new, or_replace=True))
            return
        except DBAPIError:
            pass
    if dialect == "postgresql" and not context.as_sql and kind in (VIEW, MATERIALIZED_VIEW):
        with dependants_set_aside(operations.get_bind(), old.name, kind.keyword, same_name=old.name == new.name):
            execute(operations, kind.drop(old, dialect))
            execute(operations, kind.create(new))
        return
    execute(operations, kind.drop(old, dialect))
    execute(operations, kind.create(new))


DEPENDANT_VIEWS = text(
    """
    WITH RECURSIVE dependants(oid, depth) AS (
        SELECT DISTINCT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
        WHERE d.refobjid = CAST(:name AS regclass) AND r.ev_class <> d.refobjid
        UNION
        SELECT DISTINCT r.ev_class, dependants.depth + 1
        FROM dependants JOIN pg_depend d ON d.refobjid = dependants.oid JOIN pg_rewrite r ON r.oid = d.objid
        WHERE r.ev_class <> d.refobjid
    )
    SELECT c.oid, format('%I.%I', n.nspname, c.relname), c.relkind, pg_get_viewdef(c.oid), max(depth)
    FROM dependants JOIN pg_class c ON c.oid = dependants.oid JOIN pg_namespace n ON n.oid = c.relnamespace
    GROUP BY n.nspname, c.relname, c.relkind, c.oid ORDER BY max(depth)
    """
)
# What hangs off a view and goes with it when it is dropped: indexes (materialized views),
# triggers, grants and its comment, as statements that put them back.
ATTACHED = text(
    """
    SELECT indexdef FROM pg_indexes i JOIN pg_class c ON c.relname = i.tablename
      JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = i.schemaname WHERE c.oid = :oid
    UNION ALL
    SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t WHERE t.tgrelid = :oid AND NOT t.tgisinternal
    UNION ALL
    SELECT format('GRANT %s ON %s TO %s', a.privilege_type, CAST(c.oid AS regclass),
                  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END)
    FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = :oid AND a.grantee <> c.relowner
    UNION ALL
    SELECT format('COMMENT ON %s %s IS %L', CASE c.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END,
                  CAST(c.oid AS regclass), obj_description(c.oid, 'pg_class'))
    FROM pg_class c WHERE c.oid = :oid AND obj_description(c.oid, 'pg_class') IS NOT NULL
    """
)


@contextmanager
def dependants_set_aside(connection: Connection, name: str, keyword: str, same_name: bool) -> Iterator[None]:
    """Drop the views that depend on a PostgreSQL view, deepest first, and recreate them
    after, with their indexes, triggers, grants and comments; and give those of the view
    itself back to its new definition when it keeps its name."""
    dependants = connection.execute(DEPENDANT_VIEWS, {"name": name}).all()
    attached = [row[0] for oid, *_ in dependants for row in connection.execute(ATTACHED, {"oid": oid})]
    if same_name:
        own = connection.execute(text("SELECT CAST(CAST(:name AS regclass) AS oid)"), {"name": name}).scalar_one()
        attached += [row[0] for row in connection.execute(ATTACHED, {"oid": own})]
    for _oid, dependant, relkind, _definition, _depth in reversed(dependants):
        execute(connection, f"DROP {'MATERIALIZED VIEW' if relkind == 'm' else 'VIEW'} {dependant}")
    yield
    for _oid, dependant, relkind, definition, _depth in dependants:
        execute(connection, f"CREATE {'MATERIALIZED VIEW' if relkind == 'm' else 'VIEW'} {dependant} AS {definition}")
    for statement in attached:
        execute(connection, statement)


# --- Declared objects: the current definitions, kept with the models ------------------------

REGISTRY_KEY = "replaceable_objects"


class DeclaredObject(ReplaceableObject):
    """A replaceable object the app declares on its MetaData, like a Table."""

    kind: ClassVar[Kind]

    def __init__(self, name: str, metadata: MetaData, sqltext: str) -> None:
        super().__init__(name, sqltext)
        registry = metadata.info.setdefault(REGISTRY_KEY, {})
        key = (self.kind.label, name)
        if key in registry:
            raise CommandError(f"{self.kind.label} {name!r} is declared twice on this MetaData.")
        registry[key] = self


class View(DeclaredObject):
    kind = VIEW


class MaterializedView(DeclaredObject):
    kind = MATERIALIZED_VIEW


class Function(DeclaredObject):
    kind = FUNCTION


class Procedure(DeclaredObject):
    kind = PROCEDURE


class Trigger(DeclaredObject):
    kind = TRIGGER


def declared_objects(metadata: MetaData) -> list[DeclaredObject]:
    """The declared objects, each after the declared objects its SQL names."""
    objects = list(metadata.info.get(REGISTRY_KEY, {}).values())
    if not objects:
        return []
    by_name: dict[str, list[DeclaredObject]] = {}
    for obj in objects:
        by_name.setdefault(base_name(obj.name), []).append(obj)
    # Names that are plain words are found among the words of the SQL (one small pattern for
    # all of them); any other name (with a space, a $...) by a pattern of its own, longest
    # first, and taken out of the SQL so that the words inside it are not names too.
    words = re.compile(r"\w+")
    unusual = [
        (name, re.compile(rf"(?<!\w){re.escape(name)}(?!\w)"))
        for name in sorted(by_name, key=len, reverse=True)
        if not words.fullmatch(name)
    ]
    ordered: list[DeclaredObject] = []
    seen: set[int] = set()

    def mentions(sql: str) -> set[str]:
        found = set()
        for name, pattern in unusual:
            sql, count = pattern.subn(" ", sql)
            if count:
                found.add(name)
        return found | {word for word in words.findall(sql) if word in by_name}

    def visit(obj: DeclaredObject) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        for name in sorted(mentions(obj.sqltext)):
            for other in by_name[name]:
                visit(other)
        ordered.append(obj)

    for obj in objects:
        visit(obj)
    return ordered


def create_declared_objects(connection: Connection, metadata: MetaData) -> list[DeclaredObject]:
    """Create every declared object, in dependency order (create_db.py, after create_all)."""
    created = declared_objects(metadata)
    for obj in created:
        obj.kind.check(connection.dialect.name, obj)
        execute(connection, obj.kind.create(obj))
    return created
