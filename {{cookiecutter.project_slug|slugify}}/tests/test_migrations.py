"""The migration suite: the whole history checked in-process, revision by revision.

What pytest-alembic's four built-in tests check, and how this suite checks it, more strictly:
  - one head;
  - base -> head one revision at a time, and every downgrade runs: the stairway. For each
    revision it takes the schema, upgrades, downgrades, checks that the schema
    (migrations/testing/schema.py: tables with their columns, keys, indexes and
    constraints, views, functions, triggers, sequences, enum types) and every table's row
    count are back as they were, then upgrades again. It goes on past a faulty revision and
    names every one (on the same database when it can be brought back to that revision: see
    ``walk()``). Once with the data steps off, once with them on (-x data=true) from
    the first revision that has any. An irreversible revision (migrations/irreversible.py)
    is upgraded only, with a warning that says so;
  - models == head: ``alembic check`` after ``upgrade head``, through env.py.
And one more: ``python create_db.py`` builds the same schema as ``upgrade head``, declared
views and functions included, stamped at head, and no table that ``upgrade head`` fills
(reference rows) is left empty by it.

Every step runs through env.py on one shared connection, a line of revisions in one run of
env.py, with the ScriptDirectory loaded once per module (migrations/testing/stairway.py),
so a history of a hundred revisions takes seconds, not minutes. On an async
TEST_DATABASE_URL (postgresql+asyncpg://...) that connection is an AsyncConnection, and the
suite runs through run_sync on it, as Alembic's async template does
(migrations/testing/connections.py).
The template repository's tests prove that each of these checks fails when it should.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, inspect, text

from migrations.failures import failing_revision
from migrations.replaceable import base_name, declared_objects
from migrations.settings import target_metadata
from migrations.testing.collector import freeze
from migrations.testing.connections import Link, connected
from migrations.testing.fixtures import Databases, HeadTemplate, project_config
from migrations.testing.schema import VERSION_TABLE, compared, existing_objects, sqlite_driver_rows
from migrations.testing.stairway import (
    Migrator,
    NotDowngraded,
    describe_error,
    differences,
    has_data_steps,
    load_script,
    row_counts,
    walk,
)

# Check only the revisions after this one, e.g. when hundreds of old ones are settled
# (pytest-alembic's minimum_downgrade_revision): a revision id, or None for all of them.
START_AFTER: str | None = None
# Revisions not to downgrade, each with the reason (pytest-alembic's skip_revisions). Better:
# mark such a revision itself, irreversible = "why" (see migrations/irreversible.py).
SKIP_REVISIONS: dict[str, str] = {}


@pytest.fixture(scope="module")
def script() -> ScriptDirectory:
    """The history, every revision module imported, and the models too: what they make lives
    as long as the run, and is frozen out of the collector's way (migrations/testing/collector.py)."""
    config = project_config()
    loaded = load_script(config)
    with suppress(Exception):  # env.py imports the models in any case, and says what is wrong
        target_metadata(config)
    freeze()
    return loaded


@dataclass
class Walked:
    """What the stairway left: the URL of its database once it ended at head, every step clean."""

    at_head: URL | None = None


@pytest.fixture(scope="module")
def databases(server: URL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """Databases that live as long as this module's tests."""
    databases = Databases(server, tmp_path_factory.mktemp("migrations"))
    try:
        yield databases
    finally:
        databases.drop_all()


@pytest.fixture(scope="module")
def walked() -> Walked:
    return Walked()


def without_fsync(connection: Connection) -> None:
    """A throwaway database: its commits need not wait for the disk (a SQLite fsync is ~7 ms here)."""
    if connection.dialect.name == "sqlite":
        sqlite_driver_rows(connection, "PRAGMA synchronous = OFF")
    elif connection.dialect.name == "postgresql":  # this session's commits only (the stairway commits each revision)
        connection.exec_driver_sql("SET synchronous_commit = off")
        connection.commit()  # left outside a transaction, for env.py (see Migrator)


@contextmanager
def migrator_on(url: URL, script: ScriptDirectory, data: bool = False) -> Iterator[Migrator]:
    config = project_config()
    config.attributes["database_url"] = url
    with Link(url) as link:  # on an async URL, an AsyncConnection
        link.run(without_fsync, link.connection)
        yield Migrator(config, link, script, data=data)


@pytest.fixture(scope="module")
def at_head(walked: Walked, databases: Databases, script: ScriptDirectory) -> URL:
    """A database upgraded from base to head through env.py, for the module: the models and
    create_db.py's build are compared with it, and neither changes it. The stairway's, when
    it got there soundly (see ``walk_the_stairway``), else one upgraded now."""
    if walked.at_head is not None:
        return walked.at_head
    url = databases.new()
    try:
        with migrator_on(url, script) as migrator:
            migrator.upgrade("heads")
    except Exception as error:  # the stairway names it too; here, one line instead of a traceback
        found = failing_revision(error.__traceback__)
        where = f" in revision {found[0]} ({Path(found[1]).name})" if found else ""
        pytest.fail(f"upgrade head on a new database failed{where}: {describe_error(error)}", pytrace=False)
    return url


def test_the_history_has_one_head(script: ScriptDirectory):
    heads = script.get_heads()
    assert len(heads) == 1, f"{len(heads)} heads: {', '.join(heads)}; merge them with alembic merge heads"


def walk_the_stairway(databases: Databases, script: ScriptDirectory, data: bool, walked: Walked | None = None) -> None:
    """Walk, and fail once naming every faulty revision. ``walked``: told the database the
    walk ended at head in, when it got there by upgrades the walk found sound (its last
    revision clean, no upgrade failed): faults before it were rolled back, or the walk went
    on from a database checked to be as that revision left it, or a new one."""
    used: list[URL] = []

    @contextmanager
    def fresh() -> Iterator[Migrator]:
        used.append(databases.new())
        with migrator_on(used[-1], script, data) as migrator:
            yield migrator

    steps = list(walk(script, fresh, start_after=START_AFTER, skip=SKIP_REVISIONS, data=data))
    for step in steps:
        if step.skipped and step.skipped.startswith("irreversible") or step.revision.revision in SKIP_REVISIONS:
            warnings.warn(f"{step}: not downgraded ({step.skipped})", NotDowngraded, stacklevel=1)
    faults = [fault for fault in (step.fault() for step in steps) if fault]
    reached = len({step.revision.revision for step in steps})  # a revision may be skipped, then fail
    left = count(script) - reached
    failed_upgrade = any(step.error and step.error.startswith("upgrading it failed") for step in steps)
    if walked is not None and used and steps and not left and not failed_upgrade:
        if steps[-1].skipped is not None or steps[-1].clean:
            walked.at_head = used[-1]
    not_walked = f" ({left} revisions after the failed upgrade were not walked)" if left else ""
    assert not faults, f"{len(faults)} of {reached} revisions are faulty{not_walked}:\n" + "\n".join(faults)


def count(script: ScriptDirectory) -> int:
    return sum(1 for _ in script.walk_revisions())


def test_each_downgrade_undoes_its_upgrade(databases: Databases, walked: Walked, script: ScriptDirectory):
    walk_the_stairway(databases, script, data=False, walked=walked)


def test_each_downgrade_undoes_its_upgrade_with_the_data_steps(databases: Databases, script: ScriptDirectory):
    if not any(has_data_steps(revision) for revision in script.walk_revisions()):
        pytest.skip("no revision has data steps: with them on, every revision runs as it does without")
    walk_the_stairway(databases, script, data=True)


def test_the_models_match_the_schema_at_head(at_head: URL, script: ScriptDirectory):
    with migrator_on(at_head, script) as migrator:
        migrator.check()  # AutogenerateDiffsDetected lists every difference


def every_row_count(url: URL) -> dict[str, int]:
    """Every table's row count, the version table aside (a few hundred tables per query)."""

    def counts(connection: Connection) -> dict[str, int]:
        return row_counts(connection, sorted(set(inspect(connection).get_table_names()) - {VERSION_TABLE}))

    return connected(url, counts)


@pytest.fixture(scope="module", autouse=True)
def create_db_build(head_template_build: Future[HeadTemplate]) -> Future[HeadTemplate]:
    """``python create_db.py``'s build of the session's database at head (the one
    ``database_at_head`` copies), in a process of its own, as users run it: what the revision
    modules did when this process imported them (attaching constraints to the models'
    tables) is not in it. Started now, it runs while the stairway walks."""
    return head_template_build


def test_create_db_builds_what_upgrade_head_builds(
    create_db_build: Future[HeadTemplate], at_head: URL, script: ScriptDirectory
):
    built = create_db_build.result().url  # read here, never changed
    declared = declared_objects(target_metadata(project_config()))

    def compare(a: Connection, b: Connection) -> None:
        migrated_schema, built_schema = compared(b, a)
        assert built_schema == migrated_schema, "\n".join(differences(migrated_schema, built_schema))
        built_objects = existing_objects(a)
        for obj in declared:  # the declared views, functions... were built and compared too
            key = f"{obj.kind.label} {base_name(obj.name)}"  # then "(arguments)" or " ON table" on some
            found = [k for k in built_objects if k == key or k.startswith((f"{key}(", f"{key} ON "))]
            assert found, f"{key} is not in the database create_db.py built"
        for connection in (a, b):
            versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
            assert sorted(versions) == sorted(script.get_heads())

    with Link(built) as a, Link(at_head) as b:  # async: both on the suite's event loop
        a.run(compare, a.connection, b.connection)
    migrated_rows, built_rows = every_row_count(at_head), every_row_count(built)
    empty = [f"{table} ({count} rows)" for table, count in migrated_rows.items() if count and not built_rows[table]]
    assert not empty, (
        f"upgrade head (without data steps) leaves rows in {', '.join(empty)}, which create_db.py leaves empty: "
        "reference data the application may need. Insert those rows in create_db.py too."
    )
