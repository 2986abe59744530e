"""The cookbook's recipes, wired in this project, hold for whatever history and models it has.

Each test uses a database of its own, or the session's build at head, which it leaves as
it found it; none writes into the project folder (a revision is written to a copy of
migrations/ in the test's tmp_path). On an async TEST_DATABASE_URL the
``engine`` fixture is an AsyncEngine, and recipe 3 is the async application's: Alembic
inside the caller's ``run_sync``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import shutil
import traceback
import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import URL, Column, Connection, Engine, Integer, Table, inspect, text

from migrations.autocommit import AutocommitInCallersTransaction
from migrations.environments import version_table
from migrations.failures import describe, failing_revision
from migrations.settings import target_metadata
from migrations.testing.connections import Link, connected
from migrations.testing.fixtures import ALEMBIC_INI, alembic_config_for, project_config
from migrations.testing.stairway import load_script

VERSION = version_table(project_config())  # the main environment's (migrations/environments.py)


@pytest.fixture(scope="module")
def history() -> ScriptDirectory:
    """The project's history, read once for the module (each alembic command below reads it
    again, as it does when users run it)."""
    return load_script(project_config())


def heads(history: ScriptDirectory) -> list[str]:
    return sorted(history.get_heads())


def versions(database) -> list[str]:
    """The version table's rows in a database: its URL, Engine or AsyncEngine."""

    def read(connection: Connection) -> list[str]:
        if not inspect(connection).has_table(VERSION):
            return []
        return sorted(connection.execute(text(f"SELECT version_num FROM {VERSION}")).scalars())

    return connected(database, read)


def user_objects(database) -> list[str]:
    def read(connection: Connection) -> list[str]:
        inspector = inspect(connection)
        return sorted(inspector.get_table_names() + inspector.get_view_names())

    return connected(database, read)


def upgrade_to_head(config: Config) -> None:
    """``alembic upgrade heads``; a skip naming the revision when the history's own code cannot
    take an empty database to head (one that needs rows its application writes, or refuses
    this database): tests/test_migrations.py reports that, once."""
    try:
        command.upgrade(config, "heads")
    except AutocommitInCallersTransaction as error:  # recipe 3, with a revision that must commit
        pytest.skip(f"a caller's transaction cannot hold this history: {error}")
    except Exception as error:
        revision = raised_by_a_revision(error)
        if revision is None:
            raise
        cause = error.__cause__ if isinstance(error, CommandError) and error.__cause__ else error  # env.py's: its cause
        said = f"{type(cause).__name__}: {describe(cause)}"
        pytest.skip(f"this history cannot upgrade an empty database to head: {revision} raised {said}")


def upgrade_in_callers_transaction(engine, config: Config, commit: bool) -> list[str]:
    """Recipe 3: ``alembic upgrade heads`` on the caller's connection, in its transaction, which
    the caller then commits or rolls back. An AsyncEngine's: inside its ``run_sync``, as an
    async application migrates at start-up. Returns the version rows the caller's connection
    saw before it ended its transaction."""

    def read(connection: Connection) -> list[str]:
        return sorted(connection.execute(text(f"SELECT version_num FROM {VERSION}")).scalars())

    if isinstance(engine, Engine):
        with engine.connect() as connection:
            transaction = connection.begin()
            config.attributes["connection"] = connection
            upgrade_to_head(config)
            seen = read(connection)
            transaction.commit() if commit else transaction.rollback()
        return seen

    async def upgrade() -> list[str]:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            config.attributes["connection"] = connection
            await connection.run_sync(lambda _connection: upgrade_to_head(config))
            seen = await connection.run_sync(read)
            await (transaction.commit() if commit else transaction.rollback())
        return seen

    return asyncio.run(upgrade())


@pytest.fixture
def scratch_config(database_at_head_read_only: URL, dialect: str, request, tmp_path: Path) -> Config:
    """The project's config on a database at head (create_db.py's build: no upgrade of the
    whole history per test), with its script directory copied to tmp_path, to write
    revisions in. The session's build itself, where a transaction can undo DDL (see
    ``undone``); on MariaDB, a copy of the test's own."""
    url = database_at_head_read_only
    if dialect in ("mysql", "mariadb"):
        url = request.getfixturevalue("new_database_at_head")()
    config = alembic_config_for(url)
    copy = tmp_path / "migrations"
    shutil.copytree(Path(ALEMBIC_INI).parent / "migrations", copy)  # __pycache__ too: nothing compiled again
    config.set_main_option("script_location", str(copy))
    return config


def test_autogenerate_writes_a_revision_only_for_a_model_change(scratch_config: Config):
    """Recipe 5, called from Python, where config.cmd_opts is None. At head, autogenerate
    writes no revision, unless the models differ from head (which
    tests/test_migrations.py::test_the_models_match_the_schema_at_head reports), and then
    one with operations in it. A table added to the models: a revision with it in its schema
    steps, and data steps beside them (recipe 2), which upgrades and downgrades."""
    written = command.revision(scratch_config, message="nothing", autogenerate=True)
    for script in written if isinstance(written, list) else [written]:
        source = Path(script.path).read_text()
        assert "op." in source, f"autogenerate wrote an empty revision:\n{source}"
        Path(script.path).unlink()  # the models' own differences: not this test's business
    metadata = target_metadata(scratch_config)
    probe = Table("recipes_probe_table", metadata, Column("id", Integer, primary_key=True))
    try:
        written = command.revision(scratch_config, message="probe", autogenerate=True)
    finally:
        metadata.remove(probe)
    source = Path(written.path).read_text()
    assert "recipes_probe_table" in source and "def schema_upgrades()" in source and "def data_upgrades()" in source

    def up_and_down() -> None:
        command.upgrade(scratch_config, "heads")
        command.downgrade(scratch_config, "-1")

    undone(scratch_config, up_and_down)


def undone(config: Config, migrate) -> None:
    """``migrate()`` on config's database; on PostgreSQL and SQLite inside a transaction rolled
    back afterwards (recipe 3), which leaves the database as it was even if it fails."""
    url = config.attributes["database_url"]
    if url.get_backend_name() in ("mysql", "mariadb"):  # DDL commits as it goes: a database of its own
        migrate()
        return
    before = versions(url), user_objects(url)
    with Link(url) as link:

        def in_a_transaction(connection: Connection) -> None:
            transaction = connection.begin()
            try:
                migrate()
            finally:
                transaction.rollback()

        config.attributes["connection"] = link.shared
        try:
            link.run(in_a_transaction, link.connection)
        finally:
            del config.attributes["connection"]
    if (versions(url), user_objects(url)) != before:  # something committed: later copies would differ
        pytest.fail(f"the rolled-back upgrade and downgrade changed {url.database}: something committed", pytrace=False)


def never_created(server: URL, folder: Path) -> URL:
    """A database of the server under test that no one creates: connecting to it fails (on
    SQLite, it would create the file)."""
    if server.get_backend_name() == "sqlite":
        return server.set(database=str(folder / "never.db"))
    return server.set(database=f"never_created_{uuid.uuid4().hex[:12]}")


def test_a_bad_data_flag_fails_before_any_connection(server: URL, tmp_path: Path):
    """Recipe 2: `-x data=...` takes yes/no words only, and is checked first, before env.py
    connects (to a database that does not exist: a connection would fail otherwise)."""
    config = alembic_config_for(never_created(server, tmp_path))
    config.cmd_opts = argparse.Namespace(x=["data=maybe"])  # what `alembic -x data=maybe` sets
    with pytest.raises(CommandError, match="is not a yes/no value"):
        command.upgrade(config, "heads")
    assert not (tmp_path / "never.db").exists()


def test_a_shared_connection_leaves_the_commit_to_its_caller(alembic_config: Config, engine, dialect, history):
    """Recipe 3: Alembic runs inside the caller's transaction and leaves the commit to it: the
    caller rolls it back, and nothing is left; on MariaDB, which commits each DDL statement
    (no transaction can undo it), the caller commits, and the database is at head."""
    rolled_back = dialect not in ("mysql", "mariadb")
    seen = upgrade_in_callers_transaction(engine, alembic_config, commit=not rolled_back)
    assert seen == heads(history)  # in the caller's transaction, before it ended it
    if rolled_back:
        assert user_objects(engine) == []
    else:
        assert versions(engine) == heads(history)


def raised_by_a_revision(error: BaseException) -> str | None:
    """The revision whose own code raised ``error`` (e.g. reading the database with an ORM
    Session, or batch mode on SQLite without copy_from, neither possible in --sql mode), as
    env.py names a failing revision (migrations/failures.py); None when there is none, or
    when this project's migrations/ machinery raised it below the revision."""
    if failing_revision(error.__traceback__) is None and isinstance(error, CommandError):
        error = error.__context__ or error  # env.py's one line: the database error it was raised from
    found = failing_revision(error.__traceback__)
    if found is None:
        return None
    revision, file = found
    machinery = Path(ALEMBIC_INI).parent.resolve() / "migrations"
    below: list[Path] = []  # the frames under the revision's innermost one
    for frame, _line in traceback.walk_tb(error.__traceback__):
        name = frame.f_code.co_filename
        below = [] if name == file else [*below, Path(name).resolve()]
    ours = [path for path in below if path.is_relative_to(machinery) and "versions" not in path.parts]
    return None if ours else f"{Path(file).name} ({revision})"


def test_offline_sql_names_every_revision(server: URL, tmp_path: Path, history: ScriptDirectory):
    buffer = io.StringIO()
    config = project_config(output_buffer=buffer)
    config.attributes["database_url"] = never_created(server, tmp_path)  # --sql never connects
    config.attributes["configure_logger"] = False
    try:
        command.upgrade(config, "heads", sql=True)
    except Exception as error:  # a revision that needs a live database: the history's, not env.py's
        revision = raised_by_a_revision(error)
        if revision is None:
            raise
        first_line = (str(error).strip().splitlines() or [""])[0]
        pytest.skip(f"this history cannot be written as SQL: {revision} raised {type(error).__name__}: {first_line}")
    sql = buffer.getvalue()
    missing = [rev.revision for rev in history.walk_revisions() if rev.revision not in sql]
    assert not missing, f"revisions missing from the --sql output: {missing}"
