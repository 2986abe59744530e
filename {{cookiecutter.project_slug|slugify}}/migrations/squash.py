"""Squash a long history: the revisions from base up to R become one revision that builds the
schema as it stood at R (Django's ``squashmigrations``; Alembic has none)::

    python -m migrations.cli squash <R> [--url URL ...]

The new revision keeps R's id, so a database at R or later is untouched and the revisions
after R run unchanged. It is written from what the old history builds, not guessed from
its code: a scratch database (a temporary file on SQLite, a database of its own on the
server) is upgraded to R through env.py, then read back:

- tables with their columns, constraints, indexes and comments; PostgreSQL enum types and
  sequences of their own (MariaDB's too); foreign keys that form a cycle are added after the tables;
- views, functions, procedures and triggers (whoever made them: ``op.create_view`` or
  ``op.execute``), as the database has them, through the replaceable-object operations, so
  that create_db.py sees them; each is a module-level object of the new revision, and a
  later revision's ``replaces="<squashed id>.<name>"`` finds it there (``squashes`` lists the
  ids it replaced);
- the rows the revisions inserted (reference tables): those the schema steps insert in its
  ``schema_upgrades()``, those only data steps insert in its ``data_upgrades()``.

Its downgrade drops all it made. Before writing anything it refuses when the configured
database (or each ``--url``) stands before R: that database would have no way up. After
writing, a second scratch database is upgraded to R through the new revision and compared
with the first (schema and rows): if they differ, the old files are put back. The old files
are moved to ``migrations/squashed/<R>/`` (delete it once the squash is committed).
"""

from __future__ import annotations

import datetime
import decimal
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import render as alembic_render
from alembic.autogenerate import render_python_code
from alembic.config import Config
from alembic.operations import ops
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory, write_hooks
from alembic.util import CommandError, format_as_comma, template_to_file
from sqlalchemy import Connection, MetaData, Table, event, func, inspect, select, text, union_all
from sqlalchemy import literal as bound
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import (
    CheckConstraint,
    CreateTable,
    ForeignKeyConstraint,
    PrimaryKeyConstraint,
    UniqueConstraint,
    sort_tables_and_constraints,
)
from sqlalchemy.sql.naming import conv

from migrations.conditional import has_data_steps
from migrations.declared import READERS, kind_of, literal
from migrations.environments import all_version_tables, version_table
from migrations.failures import cannot_connect, describe
from migrations.heads import HEAD_FILE, shown
from migrations.render import render_item
from migrations.replaceable import OPERATION_NAMES, TRIGGER, base_name, object_in_module

BUILD_TABLE = "create_db_in_progress"


@dataclass
class Built:
    """What the old history built at R: read from a scratch database."""

    metadata: MetaData
    enums: list[tuple[str, list[str]]] = field(default_factory=list)
    sequences: list[tuple[str, str]] = field(default_factory=list)  # (name, CREATE SEQUENCE ...)
    objects: list[tuple[Any, Any]] = field(default_factory=list)  # (kind, ReplaceableObject), in creation order
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    picture: Any = None
    identity: dict[str, str] = field(default_factory=dict)  # PostgreSQL: table -> its serial/identity column


def squash(config: Config, target: str, urls: list[URL] | None = None, check: bool = True) -> str:
    """Replace base..target with one revision of target's id; one line saying what was done."""
    started = time.perf_counter()
    script = ScriptDirectory.from_config(config)  # not the cached one: files change here
    head = _one_revision(script, target)
    replaced = list(script.iterate_revisions(head.revision, "base"))  # target first
    if len(replaced) < 2:
        raise CommandError(f"revision {head.revision} has no parent: there is nothing to squash up to it")
    ids = {revision.revision for revision in replaced}
    _refuse_branches(script, head, ids)
    if check:
        _refuse_databases_before(config, head, ids - {head.revision}, urls)
    from migrations.settings import database_url

    url = database_url(config)
    with ExitStack() as scratches:  # the old history's builds stay until the new one is checked
        first = scratches.enter_context(scratch_database(url))
        built = _run(first, partial(_build, config, head.revision, data=False))
        wanted = [(False, built, first)]
        data_rows: dict[str, list[dict[str, Any]]] = {}
        if any(has_data_steps(revision) for revision in replaced):
            second = scratches.enter_context(scratch_database(url))
            with_data = _run(second, partial(_build, config, head.revision, data=True))
            for table, rows in with_data.rows.items():
                more = [row for row in rows if row not in built.rows.get(table, [])]
                if more:
                    data_rows[table] = more
            if data_rows:
                wanted.append((True, with_data, second))
        path, moved = _squashed(config, script, head, replaced, url, built, data_rows)
        problems: list[str] = []
        try:
            for data, old, old_url in wanted:
                with scratch_database(url) as scratch:
                    try:
                        problems += _run(scratch, partial(_check, config, head.revision, old, old_url, data=data))
                    except Exception as error:  # the new revision does not run: put the old files back
                        problems.append(
                            f"the squashed revision failed{' with the data steps' if data else ''}: {describe(error)}"
                        )
        except BaseException:  # interrupted (Ctrl-C), or a scratch database that could not be made
            _restore(path, moved)
            raise
    if problems:
        _restore(path, moved)
        raise CommandError(
            f"the squashed revision does not build what the old history built, so the old files are back "
            f"and nothing changed: {'; '.join(problems[:3])}"
        )
    for original, kept in moved:
        if original.name == HEAD_FILE:
            kept.unlink()  # squashed: head.txt is the hook's
    seconds = time.perf_counter() - started
    written = shown(path)
    return (
        f"{len(replaced)} revisions squashed into {written} ({len(built.metadata.tables)} tables, "
        f"{len(built.objects)} views/functions/triggers, {sum(map(len, built.rows.values()))} rows"
        f"{f', {sum(map(len, data_rows.values()))} more with data steps' if data_rows else ''}), checked "
        f"against the old history on a scratch database in {seconds:.1f} s; the old files are in "
        f"{shown(_backup_folder(script, head.revision))}/: delete it once this is committed."
    )


def _squashed(
    config: Config,
    script: ScriptDirectory,
    head: Script,
    replaced: list[Script],
    url: URL,
    built: Built,
    data_rows: dict[str, list[dict[str, Any]]],
) -> tuple[Path, list[tuple[Path, Path]]]:
    """Write the squashed revision (the old files moved away): its path, and what was moved."""
    objects = _object_names(built.objects)
    upgrade, downgrade, data_upgrade, imports = _render(
        built, data_rows, objects, url.get_backend_name(), _convention(config)
    )
    definitions = [
        f"{name} = ReplaceableObject({obj.name!r}, {literal(obj.sqltext)})"
        for name, (_kind, obj) in zip(objects, built.objects, strict=True)
    ]
    header = _header(replaced, definitions, imports, _referred(script, replaced))
    return _write(config, script, head, replaced, header, upgrade, downgrade, data_upgrade)


def _convention(config: Config) -> dict:
    """The models' naming convention, which op.create_table() applies to unnamed constraints."""
    from migrations.settings import target_metadata

    try:
        return dict(target_metadata(config).naming_convention)
    except Exception:  # models that do not import: SQLAlchemy's default
        return dict(MetaData().naming_convention)


# --- Refusals --------------------------------------------------------------------------------


def _one_revision(script: ScriptDirectory, target: str) -> Script:
    try:
        found = script.get_revisions(target)
    except Exception as error:
        raise CommandError(f"{target!r} is not a revision of this history: {describe(error)}") from None
    if len(found) != 1 or found[0] is None:
        raise CommandError(f"{target!r} names {len(found)} revisions: name one (an id or its prefix)")
    return found[0]


def _refuse_branches(script: ScriptDirectory, head: Script, ids: set[str]) -> None:
    """A revision outside base..R that starts from (or depends on) one before R would lose it."""
    for revision in script.walk_revisions():
        if revision.revision in ids:
            continue
        before = [parent for parent in revision._all_down_revisions if parent in ids - {head.revision}]
        if before:
            raise CommandError(
                f"revision {revision.revision} starts from {before[0]}, before {head.revision}: it would lose "
                f"its parent. Merge its branch first, or squash up to a revision of that branch's line."
            )


def _refuse_databases_before(config: Config, head: Script, before: set[str], urls: list[URL] | None) -> None:
    from migrations.at_head import database_revisions
    from migrations.settings import database_url

    for url in urls or [database_url(config)]:
        where = url.render_as_string(hide_password=True)
        for revision in database_revisions(config, url):
            if revision in before:
                raise CommandError(
                    f"{where} stands at {revision}, before {head.revision}: upgrade it first "
                    f"(alembic upgrade {head.revision}), or it has no way up after the squash. Nothing was written."
                )


# --- Building the old history on a scratch database -------------------------------------------


@contextmanager
def scratch_database(url: URL, purpose: str = "squash") -> Iterator[URL]:
    """A new, empty database beside the configured one; dropped afterwards."""
    if url.get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"{purpose}-") as folder:
            yield url.set(database=str(Path(folder, f"{purpose}.db")))
        return
    from migrations.settings import run_on_connection, server_url

    # named after the configured database, so that whose it is shows (and tests can find it)
    name = f"{url.database[:32]}_{purpose}_{os.getpid()}_{time.monotonic_ns() % 10**6}"

    def server(statement: str, connection: Connection) -> None:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql(statement.format(connection.dialect.identifier_preparer.quote(name)))

    try:
        try:
            run_on_connection(server_url(url), partial(server, "CREATE DATABASE {}"), cannot_connect)
        except DBAPIError as error:  # no right to create databases, ...
            raise CommandError(
                f"{purpose} needs a scratch database beside the configured one: {describe(error)}"
            ) from None
        yield url.set(database=name)
    finally:  # also after an interrupted CREATE DATABASE
        run_on_connection(server_url(url), partial(server, "DROP DATABASE IF EXISTS {}"), cannot_connect)


def _run(url: URL, fn):
    from migrations.settings import run_on_connection

    return run_on_connection(url, fn, cannot_connect)


def _build(config: Config, revision: str, connection: Connection, data: bool) -> Built:
    upgrade_on(config, revision, connection, data)
    return _read(config, connection)


def upgrade_on(
    config: Config, revision: str, connection: Connection, data: bool, script: ScriptDirectory | None = None
) -> None:
    """``alembic upgrade revision`` on ``connection``, through env.py; with ``script``, the
    history already loaded (``command.upgrade`` loads every revision file again: called once
    per revision of a long history, that cost grows with its square)."""
    saved = {key: config.attributes.get(key) for key in ("connection", "data", "configure_logger")}
    config.attributes.update(connection=connection, data=data, configure_logger=False)
    quiet = logging.getLogger("alembic")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # each scratch build's "Running upgrade" lines are noise here
    try:
        if script is None:
            command.upgrade(config, revision)
        else:  # what command.upgrade does, with this ScriptDirectory
            steps = partial(_upgrade_steps, script, revision)
            with EnvironmentContext(config, script, fn=steps, destination_rev=revision):
                script.run_env()
    finally:
        quiet.setLevel(level)
        for key, value in saved.items():
            if value is None:
                config.attributes.pop(key, None)
            else:
                config.attributes[key] = value
    if connection.in_transaction():
        connection.commit()


def _upgrade_steps(script: ScriptDirectory, destination: str, heads, _context) -> list:
    return script._upgrade_revs(destination, heads)


def _check(config: Config, revision: str, wanted: Built, old_url: URL, connection: Connection, data: bool) -> list[str]:
    """What differs between the old history's build (``wanted``, still at ``old_url``) and
    what the history, squashed now, builds here: the schema as the migration suite compares
    it (PostgreSQL and MariaDB: its one catalog query), and every table's rows."""
    upgrade_on(config, revision, connection, data)
    found = Built(wanted.metadata, picture=_picture(connection))
    old_picture, picture = wanted.picture, found.picture
    if found.picture != wanted.picture:
        # The long way, to say what differs: both read as the suite's snapshot; PostgreSQL's
        # CHECKs as it prints them.
        from migrations.testing.schema import snapshot

        wanted = Built(wanted.metadata, picture=_run(old_url, snapshot), rows=wanted.rows)
        found.picture = snapshot(connection)
        if connection.dialect.name == "postgresql":
            _same_checks_as_rebuilt(connection, wanted.picture, found.picture)
        problems = _differences(wanted, found, rows=False)
        if not problems:  # the catalog reads more than reflection shows (a sequence as a default, ...)
            from migrations.testing.catalog import pictured
            from migrations.testing.steps import differences

            old_parts, new_parts = pictured(old_picture), pictured(picture)
            problems = differences(old_parts, new_parts, "only in the squashed", "only in the old") or [
                "the schema differs as the catalog reads it"
            ]
        return problems
    found.rows = _rows(connection, [*wanted.metadata.tables.values()])
    if connection.in_transaction():
        connection.rollback()
    problems = _differences(wanted, found)
    if not problems and not data:  # the revisions after it still run on what it built
        try:
            upgrade_on(config, "heads", connection, data)
        except Exception as error:
            try:  # and on the old history's build? Then it is not the squash's doing
                _run(old_url, partial(upgrade_on, config, "heads", data=data))
            except Exception:
                return problems
            problems.append(f"a revision after {revision} fails on the squashed history: {describe(error)}")
    return problems


def _picture(connection: Connection) -> Any:
    from migrations.testing.catalog import catalog
    from migrations.testing.schema import snapshot

    found = catalog(connection)
    return found if found is not None else snapshot(connection)


def _rows(connection: Connection, tables: list[Table]) -> dict[str, list[dict[str, Any]]]:
    """Every row of the tables that have any, in key order: one query counts them all."""
    rows: dict[str, list[dict[str, Any]]] = {}
    if not tables:
        return rows
    filled = set()
    for start in range(0, len(tables), 200):  # SQLite takes at most 500 SELECTs in one UNION
        counted = union_all(
            *(select(bound(table.name), func.count()).select_from(table) for table in tables[start : start + 200])
        )
        filled |= {name for name, count in connection.execute(counted) if count}
    for table in tables:
        if table.name in filled:
            order = list(table.primary_key.columns)  # without a key: sorted here (json has no order)
            found = connection.execute(select(table).order_by(*order))
            read = [{key: _plain(value) for key, value in row._mapping.items()} for row in found]
            rows[table.name] = read if order else sorted(read, key=repr)
    return rows


def _same_checks_as_rebuilt(connection: Connection, old: dict, new: dict) -> None:
    """PostgreSQL prints a CHECK made from its own printout of another one differently
    (``ARRAY['a'::varchar]::text[]`` becomes ``ARRAY['a'::varchar::text]``): where the checks
    of a table differ, both sides are replaced by what PostgreSQL makes of them here."""
    quote = connection.dialect.identifier_preparer.quote
    for table, picture in new["tables"].items():
        before = old["tables"].get(table)
        if before is None or before["checks"] == picture["checks"]:
            continue
        for side in (before, picture):
            side["checks"] = [
                (name, _rebuilt(connection, quote(table), sql), *rest) for name, sql, *rest in side["checks"]
            ]
    if connection.in_transaction():
        connection.rollback()


def _rebuilt(connection: Connection, table: str, sql: str) -> str:
    probe = "squash_check_probe"
    savepoint = connection.begin_nested() if connection.in_transaction() else connection.begin()
    try:
        connection.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT {probe} CHECK ({sql}) NOT VALID")
        query = (
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = :probe AND conrelid = CAST(:table AS regclass)"
        )
        printed = connection.execute(text(query), {"probe": probe, "table": table}).scalar_one()
    except Exception:
        return sql  # compared as it is
    finally:
        savepoint.rollback()
    found = re.match(r"CHECK \((.*)\)(?: NOT VALID)?$", printed, re.DOTALL)
    return found.group(1) if found else printed


def _read(config: Config, connection: Connection) -> Built:
    skipped = set(all_version_tables(config)) | {version_table(config), BUILD_TABLE}
    metadata = MetaData()
    impl = MigrationContext.configure(connection).impl
    inspector = inspect(connection)

    @event.listens_for(metadata, "column_reflect")
    def as_autogenerate_sees_it(_inspector, table, column_info) -> None:
        impl.autogen_column_reflect(inspector, table, column_info)  # PostgreSQL: serial, not nextval()

    names = [name for name in inspector.get_table_names() if name not in skipped]
    metadata.reflect(connection, only=names, resolve_fks=False)
    _as_written(metadata, connection.dialect.name)
    built = Built(metadata)
    if connection.dialect.name == "postgresql":
        built.enums = [(enum["name"], list(enum["labels"])) for enum in inspector.get_enums()]
        quote = connection.dialect.identifier_preparer.quote
        built.sequences = [
            (row.name, _create_sequence(row._mapping, quote)) for row in connection.execute(text(PG_SEQUENCES))
        ]
        for table in metadata.tables.values():
            for column in table.columns:
                if hasattr(column.type, "create_type"):
                    column.type.create_type = False  # made once, before the tables
                if column.identity is not None or (column.autoincrement is True and column.primary_key):
                    built.identity[table.name] = column.name
    if connection.dialect.name in ("mysql", "mariadb") and getattr(connection.dialect, "is_mariadb", False):
        quote = connection.dialect.identifier_preparer.quote
        for name in inspector.get_sequence_names():
            statement = connection.exec_driver_sql(f"SHOW CREATE SEQUENCE {quote(name)}").one()[1]
            built.sequences.append((name, statement.split(" ENGINE=")[0]))
    built.objects = [
        (kind_of(key), obj) for key, (obj, _normalised) in READERS[connection.dialect.name].existing(connection).items()
    ]
    built.rows = _rows(connection, list(metadata.tables.values()))
    built.picture = _picture(connection)  # as the migration suite compares schemas
    if connection.in_transaction():
        connection.rollback()
    return built


def _as_written(metadata: MetaData, dialect: str) -> None:
    """Leave out of the revision what reflection states but nobody writes: autoincrement=False
    on a column outside the primary key (where it means nothing), and a dialect option that
    is empty or off (``postgresql_include=[]``). On PostgreSQL a CHECK of an IN list (a
    non-native Enum's) is written as an IN list again: made from its printout, it would be
    printed differently from the one the old history made."""
    for table in metadata.tables.values():
        for constraint in table.constraints:
            if dialect == "postgresql" and isinstance(constraint, CheckConstraint):
                constraint.sqltext = text(_in_list(str(constraint.sqltext)))
        for column in table.columns:
            if column.autoincrement is False and not column.primary_key:
                column.autoincrement = "auto"
        for item in [*table.constraints, *table.indexes]:
            if isinstance(item.name, str) and not isinstance(item.name, conv):
                item.name = conv(
                    item.name
                )  # written as op.f("..."): the models' naming convention is not applied again
            for options in item.dialect_options.values():
                stated = getattr(options, "_non_defaults", {})
                for key in [key for key, value in stated.items() if value in ([], {}, (), None, False)]:
                    del stated[key]


PG_SEQUENCES = """
SELECT s.sequencename AS name, s.data_type::text AS data_type, s.start_value, s.increment_by, s.min_value,
       s.max_value, s.cycle, s.last_value
FROM pg_sequences s
JOIN pg_class c ON c.relname = s.sequencename
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
WHERE s.schemaname = current_schema()
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
ORDER BY c.oid
"""


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def _differences(old: Built, new: Built, rows: bool = True) -> list[str]:
    from migrations.testing.steps import differences

    found = differences(old.picture, new.picture, "only in the squashed", "only in the old")
    for table in sorted(set(old.rows) | set(new.rows)) if rows else ():
        if old.rows.get(table, []) != new.rows.get(table, []):
            found.append(f"rows of {table} differ")
    return found


# --- Writing the revision ---------------------------------------------------------------------


def _object_names(objects: list[tuple[Any, Any]]) -> list[str]:
    """A module-level name for each object: its own name, made a Python identifier."""
    names: list[str] = []
    for _kind, obj in objects:
        name = re.sub(r"\W", "_", base_name(obj.name).split(".")[-1]).strip("_").lower() or "object"
        if name[0].isdigit() or name in {"op", "sa", "revision", "squashes"}:
            name = f"object_{name}"
        candidate, number = name, 2
        while candidate in names:
            candidate, number = f"{name}_{number}", number + 1
        names.append(candidate)
    return names


def _render(
    built: Built, data_rows: dict, objects: list[str], dialect: str, convention: dict
) -> tuple[str, str, str, set[str]]:
    """The upgrade, the downgrade, the data upgrade (rows only data steps inserted) and the
    imports they need."""
    from sqlalchemy.engine import make_url

    context = MigrationContext.configure(dialect_name=make_url(f"{dialect}://").get_dialect().name)
    imports: set[str] = set()

    def remember(kind: str, obj: Any, autogen_context) -> Any:
        if autogen_context.imports is not None:
            imports.update(autogen_context.imports)
            autogen_context.imports = imports  # one set for every rendering: the revision's imports
        return render_item(kind, obj, autogen_context)

    def code(operations: list) -> list[str]:
        if not operations:
            return []
        rendered = render_python_code(
            ops.UpgradeOps(ops=operations), render_item=remember, migration_context=context, imports=imports
        )
        return [line[4:] if line.startswith("    ") else line for line in rendered.splitlines() if "# ###" not in line]

    up: list[str] = []
    down: list[str] = []
    quote = context.dialect.identifier_preparer.quote
    for name, labels in built.enums:
        values = ", ".join("'" + label.replace("'", "''") + "'" for label in labels)
        up.append(f"op.execute({f'CREATE TYPE {quote(name)} AS ENUM ({values})'!r})")
    for _name, statement in built.sequences:
        for part in statement.split(";\n"):  # PostgreSQL: CREATE SEQUENCE, then where it stood
            up.append(f"op.execute({part!r})")
    sorted_tables = sort_tables_and_constraints(built.metadata.tables.values())
    # (table, its foreign keys made with it), then (None, those of a cycle, added after all tables)
    later: list[ForeignKeyConstraint] = [fk for table, fks in sorted_tables if table is None for fk in fks]
    tables = [table for table, _ in sorted_tables if table is not None]
    for table in tables:
        creating = []
        if _unnamed_under_convention(table, convention, dialect):
            # op.create_table() would name it after the convention: the statement as the database has it
            statement = str(CreateTable(table).compile(dialect=context.dialect)).strip()
            up.append(f"op.execute({literal(statement)})")
        else:
            operation = ops.CreateTableOp.from_table(table)
            # PostgreSQL drops a UNIQUE on the primary key's columns from a CREATE TABLE: added after
            again = [item for item in table.constraints if dialect == "postgresql" and _repeats_primary_key(item)]
            apart = [*later, *again]
            operation.columns = [item for item in operation.columns if not any(item is other for other in apart)]
            creating.append(operation)
            creating.extend(ops.AddConstraintOp.from_constraint(item) for item in again)
        for index in sorted(table.indexes, key=lambda index: index.name):
            operation = ops.CreateIndexOp.from_index(index)
            operation.kw = {key: value for key, value in operation.kw.items() if value not in ([], {}, None)}
            creating.append(operation)
        up.extend(code(creating))
    up.extend(code([ops.CreateForeignKeyOp.from_constraint(fk) for fk in later]))
    up.extend(_insert_rows(built, built.rows, context, remember, imports))
    data_up = _insert_rows(built, data_rows, context, remember, imports)
    if data_up and any(kind is TRIGGER for kind, _obj in built.objects):
        # inserted before the triggers are made, as the data steps inserted them: a trigger
        # would change them again (data_upgrades() runs after schema_upgrades())
        up.append("if data_enabled():  # the rows the data steps inserted, before the triggers")
        up.extend(f"    {line}" for line in data_up)
        data_up = []
    for (kind, _obj), name in zip(built.objects, objects, strict=True):
        up.append(f"op.create_{OPERATION_NAMES[kind][0]}({name})")
    for (kind, _obj), name in reversed(list(zip(built.objects, objects, strict=True))):
        down.append(f"op.drop_{OPERATION_NAMES[kind][0]}({name})")
    for fk in reversed(later):
        down.append(f"op.drop_constraint({fk.name!r}, {fk.parent.name!r}, type_='foreignkey')")
    for table in reversed(tables):
        down.append(f"op.drop_table({table.name!r})")
    for name, _statement in reversed(built.sequences):
        down.append(f"op.execute({'DROP SEQUENCE ' + quote(name)!r})")
    for name, _labels in reversed(built.enums):
        down.append(f"op.execute({f'DROP TYPE {quote(name)}'!r})")
    return "\n".join(up), "\n".join(down), "\n".join(data_up), imports


PG_IN_LIST = re.compile(
    r"(?:\((?P<wrapped>\w+|\"[^\"]+\")\)|(?P<column>\b\w+|\"[^\"]+\"))::text = ANY "
    r"\(\(?ARRAY\[(?P<items>'(?:[^']|'')*'::character varying"
    r"(?:, '(?:[^']|'')*'::character varying)*)\]\)?::text\[\]\)"
)


def _in_list(sql: str) -> str:
    """``status::text = ANY (ARRAY['a'::character varying, ...]::text[])`` -> ``status IN ('a', ...)``,
    wherever it is in the expression."""

    def written(found: re.Match) -> str:
        items = re.findall(r"'(?:[^']|'')*'(?=::character varying)", found.group("items"))
        return f"{found.group('wrapped') or found.group('column')} IN ({', '.join(items)})"

    return PG_IN_LIST.sub(written, sql)


def _repeats_primary_key(constraint: Any) -> bool:
    table = constraint.table
    return (
        isinstance(constraint, UniqueConstraint)
        and bool(table.primary_key.columns)
        and [column.name for column in constraint.columns] == [column.name for column in table.primary_key.columns]
    )


CONVENTION_KEYS = {
    PrimaryKeyConstraint: "pk",
    ForeignKeyConstraint: "fk",
    UniqueConstraint: "uq",
    CheckConstraint: "ck",
}


def _unnamed_under_convention(table: Table, convention: dict, dialect: str) -> bool:
    """Whether the table has a constraint without a name that the models' naming convention
    would name (SQLite: a table rebuilt by batch mode, made without the convention)."""
    for constraint in table.constraints:
        key = CONVENTION_KEYS.get(type(constraint))
        if constraint.name is None and key is not None and (key in convention or type(constraint) in convention):
            if isinstance(constraint, PrimaryKeyConstraint) and (not constraint.columns or dialect != "sqlite"):
                continue  # MariaDB's key is always PRIMARY, reflected without a name
            return True
    return False


def _create_sequence(sequence: dict[str, Any], quote) -> str:
    parts = [f"CREATE SEQUENCE {quote(sequence['name'])} AS {sequence['data_type']}"]
    parts.append(f"INCREMENT BY {sequence['increment_by']} MINVALUE {sequence['min_value']}")
    parts.append(f"MAXVALUE {sequence['max_value']} START WITH {sequence['start_value']}")
    if sequence["cycle"]:
        parts.append("CYCLE")
    created = " ".join(parts)
    if sequence.get("last_value") is not None:  # it has been used: its next value stays the same
        created += f";\nSELECT setval('{quote(sequence['name'])}', {sequence['last_value']})"
    return created


def _insert_rows(built: Built, rows_by_table: dict, context: MigrationContext, remember, imports: set[str]) -> list:
    lines: list[str] = []
    if not rows_by_table:
        return lines
    from alembic.autogenerate.api import AutogenContext

    autogen = AutogenContext(
        context, opts={"sqlalchemy_module_prefix": "sa.", "alembic_module_prefix": "op.", "render_item": remember}
    )
    autogen.imports = imports
    order = sort_tables_and_constraints(built.metadata.tables.values())  # a row's parents first
    for name in [table.name for table, _fks in order if table is not None and table.name in rows_by_table]:
        rows = rows_by_table[name]
        table: Table = built.metadata.tables[name]
        columns = ", ".join(
            f"sa.column({column.name!r}, {alembic_render._repr_type(column.type, autogen)})" for column in table.columns
        )
        lines.append(f"op.bulk_insert(sa.table({name!r}, {columns}), [")
        for row in rows:
            pairs = ", ".join(f"{key!r}: {_value(value, imports)}" for key, value in row.items())
            lines.append("    {" + pairs + "},")
        lines.append("])")
        column = built.identity.get(name)
        if column is not None and context.dialect.name == "postgresql":  # the next id after the rows
            quote = context.dialect.identifier_preparer.quote
            restart = (
                f"SELECT setval(pg_get_serial_sequence('{quote(name)}', '{column}'), "
                f"(SELECT max({quote(column)}) FROM {quote(name)}))"
            )
            lines.append(f"op.execute({restart!r})")
    return lines


def _value(value: Any, imports: set[str]) -> str:
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        imports.add("import datetime")
        if "zoneinfo." in repr(value):  # an aware time from psycopg: tzinfo=zoneinfo.ZoneInfo(key='UTC')
            imports.add("import zoneinfo")
    elif isinstance(value, decimal.Decimal):
        imports.add("from decimal import Decimal")
    elif isinstance(value, uuid.UUID):
        imports.add("from uuid import UUID")
    return repr(value)


def _referred(script: ScriptDirectory, replaced: list[Script]) -> dict[str, Any]:
    """The objects that revisions after the squash name as ``"<squashed id>.<name>"``
    (``replaces=``, ``replace_with=``), as the squashed revision defined them."""
    modules = {revision.revision: revision.module for revision in replaced}
    ids = "|".join(map(re.escape, modules))
    pattern = re.compile(r"""["'](""" + ids + r""")\.([A-Za-z_][\w.]*)["']""")
    found: dict[str, Any] = {}
    for later in script.walk_revisions():
        if later.revision in modules:
            continue
        for version, name in pattern.findall(Path(later.path).read_text(encoding="utf-8")):
            value = object_in_module(modules[version], name)
            if value is not None:
                found[f"{version}.{name}"] = value
    return found


def _header(replaced: list[Script], definitions: list[str], imports: set[str], referred: dict[str, Any]) -> str:
    """What goes where script.py.mako puts the imports: them, ``squashes`` and the objects."""
    lines = sorted(imports)
    if definitions or referred:
        lines.append("from migrations.replaceable import ReplaceableObject")
    lines.append("")
    ids = []  # base first, with those an earlier squash replaced
    for revision in reversed(replaced):
        ids.extend(getattr(revision.module, "squashes", ()) or ())
        ids.append(revision.revision)
    ids = ", ".join(repr(revision) for revision in ids[:-1])
    lines.append("# The revisions this one replaced, base first: a later revision's")
    lines.append('# replaces="<one of them>.<name>" finds the object of that name here.')
    lines.append(f"squashes: tuple[str, ...] = ({ids},)")
    for definition in definitions:
        lines.extend(["", definition])
    if referred:
        lines.extend(["", "# What later revisions name as <squashed id>.<name>, as those revisions defined it."])
        lines.append("replaced_objects: dict[str, ReplaceableObject] = {")
        for ident, obj in referred.items():
            lines.append(f"    {ident!r}: ReplaceableObject({obj.name!r}, {literal(obj.sqltext)}),")
        lines.append("}")
    return "\n".join(lines) + "\n"


def _write(
    config: Config,
    script: ScriptDirectory,
    head: Script,
    replaced: list[Script],
    header: str,
    upgrade: str,
    downgrade: str,
    data_upgrade: str,
) -> tuple[Path, list[tuple[Path, Path]]]:
    """Move the old files to the backup folder and write the new revision (Alembic writes it
    from script.py.mako and runs the post-write hooks); on any failure, the old files are back."""
    backup = _backup_folder(script, head.revision)
    if backup.exists():
        raise CommandError(f"{shown(backup)} exists already: move it away first. Nothing was written.")
    backup.mkdir(parents=True)
    moved: list[tuple[Path, Path]] = []
    message = f"squash of {len(replaced)} revisions up to {head.revision}: {' '.join((head.doc or '').split())}"
    path = None
    try:
        head_file = Path(script.dir, HEAD_FILE)  # the post-write hook rewrites it: kept to put back
        if head_file.exists():
            shutil.copy2(head_file, backup / f"{HEAD_FILE}.before")
            moved.append((head_file, backup / f"{HEAD_FILE}.before"))
        for revision in replaced:
            original = Path(revision.path)
            shutil.move(original, backup / original.name)
            moved.append((original, backup / original.name))
        path = Path(head.path)  # the squashed revision takes the place of the last one it replaces
        template_to_file(
            Path(script.dir, "script.py.mako"),
            path,
            script.output_encoding,
            up_revision=head.revision,
            down_revision=None,
            branch_labels=tuple(head.branch_labels) or None,
            depends_on=None,
            create_date=datetime.datetime.now(),
            comma=format_as_comma,
            message=message,
            upgrades=_indent(upgrade),
            downgrades=_indent(downgrade),
            imports=header,
        )
        if data_upgrade:
            source = path.read_text(encoding="utf-8")
            pattern = re.compile(r'(def data_upgrades\(\)[^\n]*:\n(?:[ \t]+"""[^\n]*"""\n)?)[ \t]+pass\n')
            if pattern.search(source) is None:
                raise CommandError("script.py.mako has no data_upgrades() with a pass to fill")
            source = pattern.sub(lambda match: match.group(1) + _indent(data_upgrade, first=True) + "\n", source, 1)
            path.write_text(source, encoding="utf-8")
        hooks = getattr(script, "hooks", None) or getattr(script, "hook_config", None)  # Alembic 1.17+, 1.16
        if hooks:  # as Alembic does after writing a revision: ruff, head.txt
            write_hooks._run_hooks(str(path), hooks)
    except BaseException:
        _restore(path, moved)
        for folder in (backup, backup.parent):  # made for this squash, left empty
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return path, moved


def _indent(code: str, first: bool = False) -> str:
    lines = code.splitlines() or ["pass"]
    indented = "\n".join(("    " + line) if line else "" for line in lines)
    return indented if first else indented.lstrip()


def _backup_folder(script: ScriptDirectory, revision: str) -> Path:
    return Path(script.dir, "squashed", revision)


def _restore(path: Path | None, moved: list[tuple[Path, Path]]) -> None:
    """The new revision removed, the old files back where they were."""
    if path is not None and path.exists():
        path.unlink()
    for original, backup in moved:
        shutil.move(backup, original)
    for folder in {backup.parent for _original, backup in moved}:
        if not any(folder.iterdir()):
            folder.rmdir()
            if not any(folder.parent.iterdir()):
                folder.parent.rmdir()
