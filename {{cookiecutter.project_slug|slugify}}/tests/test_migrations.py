"""The migration suite: the whole history checked in-process, revision by revision.

What pytest-alembic's four built-in tests check, and how this suite checks it, more strictly:
  - one head;
  - base -> head one revision at a time, and every downgrade runs: the stairway below.
    For each revision it takes the schema, upgrades, downgrades, asserts that the schema
    (migrations/testing/schema.py: tables with their columns, keys, indexes and constraints, views,
    functions, triggers, sequences, enum types) and every table's row count are back as
    they were, then upgrades again. Once with the data steps off, once with them on
    (-x data=true) from the first revision that has any;
  - models == head: ``alembic check`` after ``upgrade head``, through env.py.
And one more: create_db.py builds the same schema as ``upgrade head``, declared views and
functions included, stamped at head. Both compare with the database the stairway left at
head, when it got there clean (``at_head``).

Every step runs through env.py on one shared connection, a line of revisions in one run of
env.py, with the ScriptDirectory loaded once per module (migrations/testing/stairway.py), so a history
of a hundred revisions takes seconds, not minutes.
The template repository's tests prove that each of these checks fails when it should.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, text

from create_db import create_db
from migrations.replaceable import base_name, declared_objects
from migrations.settings import make_engine, target_metadata
from migrations.testing.fixtures import ALEMBIC_INI, Databases
from migrations.testing.schema import VERSION_TABLE, compared, existing_objects
from migrations.testing.stairway import (
    Migrator,
    differences,
    has_data_steps,
    load_script,
    revisions_base_to_head,
    stairway,
)


@pytest.fixture(scope="module")
def script() -> ScriptDirectory:
    return load_script(Config(ALEMBIC_INI))


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


@pytest.fixture(scope="module")
def at_head(walked: Walked, databases: Databases, script: ScriptDirectory) -> URL:
    """A database upgraded from base to head through env.py, for the module: the models and
    create_db.py's build are compared with it, and neither changes it. The stairway's, when
    it ran before and ended at head with every downgrade clean (each downgrade gave back the
    schema as it was before its upgrade, so the upgrades after it ended where a straight
    ``upgrade head`` ends); otherwise one upgraded now."""
    if walked.at_head is not None:
        return walked.at_head
    url = databases.new()
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            Migrator(Config(ALEMBIC_INI), connection, script).upgrade("heads")
    finally:
        engine.dispose()
    return url


def sqlite_without_fsync(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # A throwaway database: a commit need not wait for the disk (an fsync is ~7 ms here).
        connection.connection.driver_connection.execute("PRAGMA synchronous = OFF")


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """One connection for all the steps of a test; each step still commits its own transaction."""
    with engine.connect() as connection:
        sqlite_without_fsync(connection)
        yield connection


def test_the_history_has_one_head(script: ScriptDirectory):
    heads = script.get_heads()
    assert len(heads) == 1, f"{len(heads)} heads: {', '.join(heads)}; merge them with alembic merge heads"


def walk_the_stairway(migrator: Migrator, script: ScriptDirectory) -> None:
    revisions = [revision.revision for revision in revisions_base_to_head(script)]
    walked = []
    for step in stairway(migrator):
        walked.append(step.revision.revision)
        if step.skipped:
            continue
        changed = "\n".join(differences(step.before, step.after_downgrade))
        # what the upgrade and the downgrade did together (an upgrade can lose something too)
        message = f"upgrading {step} and downgrading it to {step.downgrade_target} changed:\n{changed}"
        assert step.after_downgrade == step.before, message
        assert step.rows_after_downgrade == step.rows_before, (
            f"upgrading {step} and downgrading it changed the row counts"
        )
    assert walked == revisions and revisions
    assert migrator.current() == tuple(sorted(script.get_heads()))


def test_each_downgrade_undoes_its_upgrade(databases: Databases, walked: Walked, script: ScriptDirectory):
    url = databases.new()  # outlives the test: the module's at_head, if the walk ends there
    config = Config(ALEMBIC_INI)
    config.attributes["database_url"] = url
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            sqlite_without_fsync(connection)
            walk_the_stairway(Migrator(config, connection, script), script)
    finally:
        engine.dispose()
    walked.at_head = url


def test_each_downgrade_undoes_its_upgrade_with_the_data_steps(
    alembic_config: Config, connection: Connection, script: ScriptDirectory
):
    if not any(has_data_steps(revision) for revision in revisions_base_to_head(script)):
        pytest.skip("no revision has data steps: with them on, every revision runs as it does without")
    walk_the_stairway(Migrator(alembic_config, connection, script, data=True), script)


def test_the_models_match_the_schema_at_head(at_head: URL, script: ScriptDirectory):
    engine = make_engine(at_head)
    try:
        with engine.connect() as connection:
            # AutogenerateDiffsDetected lists every difference
            Migrator(Config(ALEMBIC_INI), connection, script).check()
    finally:
        engine.dispose()


def test_create_db_builds_what_upgrade_head_builds(new_database, at_head: URL, script: ScriptDirectory):
    built = new_database()
    config = Config(ALEMBIC_INI)
    config.attributes["configure_logger"] = False  # leave pytest's logging alone
    create_db(config, built)
    declared = declared_objects(target_metadata(config))
    built_engine, migrated_engine = make_engine(built), make_engine(at_head)
    try:
        with built_engine.connect() as a, migrated_engine.connect() as b:
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
    finally:
        built_engine.dispose()
        migrated_engine.dispose()
