"""Cookbook recipe 1: build an up-to-date database from scratch, then stamp it at head.

    python create_db.py              # the database of $DATABASE_URL, else alembic.ini
    python create_db.py --url URL    # another database
    python create_db.py --sql        # print the SQL instead of running it
    python create_db.py --empty      # only create the database, empty: for the first autogenerate
    python create_db.py --name audit # another environment of alembic.ini (migrations/environments.py)

Creates every table of the target MetaData with ``create_all()``, then the views,
functions and triggers declared on it (migrations/replaceable.py), and records the head
revision in the version table (``alembic_version``, unless ``version_table`` says otherwise),
in one transaction (the shared-connection recipe), so a new database never replays the
whole history. A PostgreSQL or MariaDB database that
does not exist yet is created first. The migration lock is held throughout.

It refuses, changing nothing, a database that already has tables, views or a version
row (use ``alembic upgrade head`` there), or on MariaDB a function or procedure it
would create. An empty version table alone (``alembic downgrade base`` leaves one) is a
new database: it builds there, and never removes that table. A failed build leaves
nothing: PostgreSQL and SQLite roll it back; MariaDB commits DDL as it goes, so there the
table ``create_db_in_progress`` lists what the build will make until it is stamped, a
failed build removes exactly that, and after a kill ``python create_db.py`` again
removes the killed run's leftovers (empty tables only) and builds. A database this run
created is dropped after a failure only if no one else is using it.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections import Counter
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import URL, Connection, MetaData, Table, create_mock_engine, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError

from migrations.autogenerate_options import is_view
from migrations.build_cleanup import (
    DROP_WHEN_CLOSED,
    IN_PROGRESS,
    NON_TRANSACTIONAL_DDL,
    build_failed,
    clean_up_failed_build,
    create_missing_database,
    creates_databases,
    drop_unused_database,
    ensure_database_exists,
    finish_killed_build,
    objects_in_database,
)
from migrations.environments import DEFAULT_VERSION_TABLE, version_table
from migrations.failures import describe
from migrations.history_objects import history_objects
from migrations.lock import LockTimeout, lock_timeout, migration_lock
from migrations.replaceable import base_name, create_declared_objects, declared_objects, execute
from migrations.settings import database_url, run_on_connection, target_metadata
from migrations.stamp import history, one_head, stamp_head
from migrations.tenants import refuse_tenant

ALEMBIC_INI = Path(__file__).resolve().with_name("alembic.ini")


class Refused(CommandError):
    """create_db.py will not build here, and changed nothing."""


class _CannotConnect(Exception):
    """The build's connection failed (the database may be missing): nothing was run."""

    def __init__(self, error: OperationalError) -> None:
        super().__init__(str(error))
        self.error = error


def _not_connected(error: OperationalError, _url: URL) -> _CannotConnect:
    return _CannotConnect(error)


def create_db(config: Config, url: URL | str | None = None) -> str:
    """Create the schema and stamp head; return what was done, in one line."""
    refuse_tenant(config, "create_db.py")
    if url is not None:
        config.attributes["database_url"] = url
    url = database_url(config)
    script = require_revisions(config)
    metadata = target_metadata(config)
    timeout = lock_timeout(config)
    version = version_table(config)  # this environment's (migrations/environments.py)
    planned = plan(metadata, version)
    created_database = False

    # The migration lock, as `alembic upgrade` takes it, for the whole build: on MariaDB it
    # must outlast the transaction, which would otherwise end after the lock is let go.
    # A lock timeout or a refusal leaves the database as it is, even one created above:
    # another run may have built it meanwhile.
    def build_locked(connection: Connection) -> tuple[str | None, str | None, Exception | None, str]:
        """(what finishing a killed build said, or None; the head; a failure; what it left)"""
        with migration_lock(connection, timeout, version):
            finished = finish_killed_build(connection, url, version)
            if finished:
                return finished, None, None, ""
            try:
                return None, build(connection, config, script, metadata, url, planned), None, ""
            except (Refused, LockTimeout):  # SQLite's lock is taken in the build's transaction
                raise
            except Exception as error:
                return None, None, error, clean_up_failed_build(connection, url, planned, created_database)

    try:  # one connection: a missing database is seen when it fails (a second one cost 0.1 s)
        finished, head, failure, left = run_on_connection(url, build_locked, _not_connected)  # an async URL too
    except _CannotConnect as error:
        if not creates_databases(url):
            raise error.error from None
        created_database = create_missing_database(url, error.error)
        finished, head, failure, left = run_on_connection(url, build_locked)
    if finished:
        return finished
    if failure is not None:
        if left == DROP_WHEN_CLOSED:  # PostgreSQL: now that our session is gone
            left = drop_unused_database(url)
        if isinstance(failure, (DBAPIError, CommandError)):
            raise build_failed(url, failure, left) from failure
        raise failure
    where = url.render_as_string(hide_password=True)
    built = "Created database and built" if created_database else "Built"
    return f"{built} {where}: {summary(planned, version)}; stamped at head {head}."


def build(
    connection: Connection, config: Config, script: ScriptDirectory, metadata: MetaData, url: URL, planned: list
) -> str:
    """Refuse a database that is not empty; else create_all, the declared objects and the
    stamp, in one transaction. Returns the head.

    On SQLite, whose migration lock is the BEGIN IMMEDIATE write lock, the check is in the
    build's transaction. MariaDB commits the plan (IN_PROGRESS) after the check, before the
    first DDL, and drops it after the stamp: a rerun after a kill knows what is its own."""
    marked = connection.dialect.name in NON_TRANSACTIONAL_DDL
    version = version_table(config)
    if marked:
        with connection.begin():
            if refuse_if_not_empty(connection, url, metadata, version):  # an empty version table: found, not made
                planned.remove(("table", version))  # so no undo of this run ever drops it
            IN_PROGRESS.create(connection)
            connection.execute(IN_PROGRESS.insert(), [{"kind": kind, "name": name} for kind, name in planned])
    with connection.begin():
        if not marked:
            refuse_if_not_empty(connection, url, metadata, version)
        metadata.create_all(connection, tables=tables_of(metadata), checkfirst=False)  # the database was found empty
        create_declared_objects(connection, metadata)  # views, functions: after the tables
        create_history_objects(connection, config, script, metadata, planned, marked)  # the history is imported now
        stamp_head(config, connection, script)  # one head, through env.py
        head = connection.execute(text(f"SELECT version_num FROM {version}")).scalar_one()
    if marked:
        with connection.begin():
            IN_PROGRESS.drop(connection)
    return head


def create_history_objects(
    connection: Connection, config: Config, script: ScriptDirectory, metadata: MetaData, planned: list, marked: bool
) -> None:
    """The views, functions... that revisions make with op.create_view & co. and the models do
    not declare (migrations/history_objects.py), after the declared ones. On MariaDB each is
    listed in the build's plan before it is made, and one already there stops the build (its
    undo removes only what the build made)."""
    objects = undeclared_history_objects(config, script, metadata, connection.dialect)
    if marked and objects:
        there = {(kind, name.lower()) for kind, name in objects_in_database(connection)}
        keys = [(kind.label, base_name(obj.name)) for kind, obj in objects]
        clashes = [f"{label} {name}" for label, name in keys if (label, name.lower()) in there]
        if clashes:
            raise CommandError(f"the database already has {', '.join(clashes)}, which the history makes")
        connection.execute(IN_PROGRESS.insert(), [{"kind": label, "name": name} for label, name in keys])
    for kind, obj in objects:
        kind.check(connection.dialect.name, obj)
        execute(connection, kind.create(obj))
        planned.append((kind.label, base_name(obj.name)))


def undeclared_history_objects(config: Config, script: ScriptDirectory, metadata: MetaData, dialect) -> list:
    """(kind, object) of each object the history leaves at head that the models do not declare;
    a warning names each revision that could not be replayed."""
    declared = {(obj.kind.label, base_name(obj.name)) for obj in declared_objects(metadata)}
    found = history_objects(config, script, dialect)
    for skipped in found.skipped:
        print(
            f"create_db.py: warning: revision {skipped}: its views, functions and triggers cannot be found "
            "without a database, and are not built; declare them in the models instead",
            file=sys.stderr,
        )
    return [(kind, obj) for key, (kind, obj) in found.alive.items() if key not in declared]


def require_revisions(config: Config) -> ScriptDirectory:
    """Refuse, before touching any database, a history with no revision file at all (the
    example deleted, none written yet): there is no head to stamp, and a database built
    anyway would leave the first autogenerate nothing to write. Returns the config's
    ScriptDirectory. No revision is imported here: one may attach things to the models'
    tables as it is imported, so the history is loaded only after ``create_all()``
    (migrations/stamp.py: ``one_head``)."""
    script, files = history(config)
    suffixes = (".py", ".pyc") if script.sourceless else (".py",)
    if not any(path.endswith(suffixes) for path, _size, _mtime in files):
        raise Refused(
            f"{script.versions} holds no revision yet, so there is no head to stamp: create_db.py changed "
            'nothing. Write the first revision with `alembic revision --autogenerate -m "create tables"` '
            "against an empty database (`python create_db.py --empty` creates it), then run create_db.py."
        )
    return script


def plan(metadata: MetaData, version: str = DEFAULT_VERSION_TABLE) -> list[tuple[str, str]]:
    """(kind, name) of everything a build makes: tables, declared objects, the version table."""
    tables = [("table", table.fullname) for table in tables_of(metadata)]
    objects = [(obj.kind.label, base_name(obj.name)) for obj in declared_objects(metadata)]
    return [*tables, *objects, ("table", version)]


def tables_of(metadata: MetaData) -> list[Table]:
    """The MetaData's tables, but those mapped onto a view (``info={"is_view": True}``): the
    view itself comes from a revision or a declaration (migrations/autogenerate_options.py)."""
    return [table for table in metadata.sorted_tables if not is_view(table)]


def summary(planned: list[tuple[str, str]], version: str) -> str:
    """Counts, not names (a big schema has hundreds): "1 table, 1 view, 1 function"."""
    counts = Counter(kind for kind, name in planned if name != version)
    order = ["table", "view", "materialized view", "function", "procedure", "trigger"]
    shown = [f"{counts[kind]} {kind}{'s' if counts[kind] != 1 else ''}" for kind in order if counts[kind]]
    return ", ".join(shown) or "nothing"


# --- Refusing: before anything is built -------------------------------------------------


def refuse_if_not_empty(connection: Connection, url: URL, metadata: MetaData, version: str) -> bool:
    """Refuse, changing nothing, a database with tables or views, or on MariaDB a routine
    the build would create (its undo must only ever meet what the build made). An empty
    version table is no obstacle (a database downgraded to base): True when there is one."""
    where = url.render_as_string(hide_password=True)
    inspector = inspect(connection)
    found = sorted(inspector.get_table_names()) + sorted(inspector.get_view_names())
    if connection.dialect.name == "postgresql":
        found += sorted(inspector.get_materialized_view_names())
    has_version_table = version in found
    stamped = has_version_table and connection.execute(text(f"SELECT 1 FROM {version}")).first()
    if has_version_table and not stamped:
        found.remove(version)
    clashes = existing_routines(connection, metadata)
    if found:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        advice = (
            "run `alembic upgrade head` instead"
            if stamped
            else "it has no version row, so `alembic upgrade head` would collide with its tables: if they "
            "already match the models, run `alembic stamp head`; otherwise empty it (or use another "
            "database) and run create_db.py again"
        )
        raise Refused(
            f"{where} is not empty ({shown}): create_db.py only builds new databases and changed nothing; {advice}."
        )
    if clashes:
        raise Refused(
            f"{where} already has {', '.join(clashes)}, which create_db.py would create: it changed "
            "nothing; drop or rename that, or use another database, and run create_db.py again."
        )
    return has_version_table


def existing_routines(connection: Connection, metadata: MetaData) -> list[str]:
    """MariaDB: the declared functions and procedures already in the database, as
    "function name". (PostgreSQL's have overloads: a clash fails there and rolls back.)"""
    if connection.dialect.name not in NON_TRANSACTIONAL_DDL:
        return []
    wanted = {(obj.kind.label, base_name(obj.name).lower()) for obj in declared_objects(metadata)}
    found = objects_in_database(connection)
    return sorted(f"{kind} {name}" for kind, name in found if (kind, name.lower()) in wanted)


# --- --sql and the command line -------------------------------------------------------------


def create_empty(config: Config, url: URL | str | None = None) -> str:
    """--empty: the database, created if it is missing, and nothing in it (no table, no stamp):
    what the first `alembic revision --autogenerate` compares the models with."""
    refuse_tenant(config, "create_db.py")
    if url is not None:
        config.attributes["database_url"] = url
    url = database_url(config)
    where = url.render_as_string(hide_password=True)
    next_step = 'now run `alembic revision --autogenerate -m "create tables"`'
    if url.get_backend_name() == "sqlite":
        if not url.database or not Path(url.database).exists():
            return f"{where}: SQLite creates the file when it is first used; {next_step}."
    elif ensure_database_exists(url):
        return f"Created database {where}, empty; {next_step}."
    version = version_table(config)

    def tables(connection: Connection) -> list[str]:  # an empty version table aside (downgraded to base)
        found = sorted(inspect(connection).get_table_names())
        if version in found and connection.execute(text(f"SELECT 1 FROM {version}")).first() is None:
            found.remove(version)
        return found

    found = run_on_connection(url, tables)
    if found:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise CommandError(
            f"{where} is not empty ({shown}), and the first autogenerate compares the models with an empty "
            "database: drop it, or give another database, and run create_db.py --empty again. Nothing changed."
        )
    return f"{where} exists and is empty: nothing changed; {next_step}."


def print_sql(config: Config, url: URL | str | None = None) -> None:
    """--sql: the CREATE statements and the stamp, as SQL, for review or a DBA."""
    refuse_tenant(config, "create_db.py")
    if url is not None:
        config.attributes["database_url"] = url
    url = database_url(config)
    script = require_revisions(config)
    metadata = target_metadata(config)
    printed: list[str] = []  # printed once the history is known to have one head

    def dump(statement, *_args, **_kwargs):
        printed.append(f"{str(statement.compile(dialect=mock.dialect)).strip()};\n")

    mock = create_mock_engine(url, dump)
    metadata.create_all(mock, tables=tables_of(metadata), checkfirst=False)
    one_head(script)  # after create_all, as in a build
    declared = [(obj.kind, obj) for obj in declared_objects(metadata)]
    for kind, obj in declared + undeclared_history_objects(config, script, metadata, mock.dialect):
        statement = kind.create(obj)
        if mock.dialect.name in NON_TRANSACTIONAL_DDL and ";" in statement:  # see replaceable.execute
            printed.append(f"DELIMITER //\n{statement}\n//\nDELIMITER ;\n")
        else:
            printed.append(f"{statement};\n")
    print("\n".join(printed))
    command.stamp(config, "head", sql=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", help="database URL (default: $DATABASE_URL, then alembic.ini; with --name NAME: $NAME_DATABASE_URL)"
    )
    parser.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    parser.add_argument(
        "--empty",
        action="store_true",
        help="only create the database (PostgreSQL, MariaDB) if it is missing, empty: for the first "
        "`alembic revision --autogenerate`, before there is a revision to build from",
    )
    parser.add_argument("-c", "--config", default=str(ALEMBIC_INI), help="path to alembic.ini")
    parser.add_argument(
        "-n", "--name", default="alembic", help="the environment: alembic.ini's section, as alembic --name"
    )
    args = parser.parse_args(argv)
    # [tool.alembic] too; another environment: its own section (migrations/environments.py)
    config = Config(args.config, ini_section=args.name, toml_file=Path(args.config).with_name("pyproject.toml"))
    try:
        if args.empty:
            print(create_empty(config, args.url))
        elif args.sql:
            print_sql(config, args.url)
        else:
            print(create_db(config, args.url))
    except CommandError as error:
        print(f"create_db.py: error: {error}", file=sys.stderr)
        return 1
    except DBAPIError as error:  # cannot connect, may not create the database, ...: before any build
        where = database_url(config).render_as_string(hide_password=True)
        print(f"create_db.py: error: {describe(error)} (on {where}; nothing was built)", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `--sql | head`: the reader has what it wanted (Python's recipe, no traceback)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    # A short run that frees little: the cyclic garbage collector's passes over every model
    # and revision object would only add time (a sixth of the CPU time for 300 tables).
    gc.disable()
    code = main()
    # At exit (after the atexit handlers: logging's flush among them), Python collects again
    # as it tears the modules down, walking every object still alive for garbage that no
    # longer matters: 0.1 s of 0.7 s for 300 tables on SQLite. Frozen, they are not walked.
    if hasattr(gc, "freeze"):  # CPython
        gc.freeze()
    sys.exit(code)
