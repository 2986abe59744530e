"""Async URLs just work (issue 13): the alembic command, create_db.py, the migration lock and
recipe 3 on the project's database through its async drivers (postgresql+asyncpg,
postgresql+psycopg_async, sqlite+aiosqlite, mysql+aiomysql), with no option to pick."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import URL, inspect, text

from migrations.settings import make_async_engine, make_engine
from migrations.testing.fixtures import project_config, test_server
from proofs.helpers import alembic_cli, drop_database, run_in_project, run_together

HEAD = ScriptDirectory.from_config(project_config()).get_current_head()
TIMEOUT = 120  # seconds, for any one subprocess
ASYNC_DRIVERS = {  # the drivers of each backend, and the package each needs
    "postgresql": {"asyncpg": "asyncpg", "psycopg_async": "psycopg"},
    "sqlite": {"aiosqlite": "aiosqlite"},
    "mysql": {"aiomysql": "aiomysql"},
    "mariadb": {"aiomysql": "aiomysql"},
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test once per async driver of the database under test."""
    if "async_driver" in metafunc.fixturenames:
        try:
            backend = test_server().get_backend_name()
        except CommandError:  # the server fixture fails the test in one line
            backend = "sqlite"
        metafunc.parametrize("async_driver", sorted(ASYNC_DRIVERS[backend]))


@pytest.fixture
def async_url(database_url: URL, async_driver: str) -> URL:
    """This test's database, through an async driver."""
    backend = database_url.get_backend_name()
    for package in ("greenlet", ASYNC_DRIVERS[backend][async_driver]):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed (pip install {package})")
    return database_url.set(drivername=f"{backend}+{async_driver}")


def version(url: URL) -> str | None:
    with make_engine(url).connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def tables(url: URL) -> list[str]:
    with make_engine(url).connect() as connection:
        return sorted(inspect(connection).get_table_names())


def test_upgrade_and_downgrade_on_an_async_url(async_url, database_url):
    result = alembic_cli(async_url, "upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert version(database_url) == HEAD
    result = alembic_cli(async_url, "downgrade", "base")
    assert result.returncode == 0, result.stderr
    assert tables(database_url) == ["alembic_version"]
    assert version(database_url) is None


def test_autogenerate_and_check_on_an_async_url_write_no_empty_file(async_url, project_copy):
    assert alembic_cli(async_url, "upgrade", "head", cwd=project_copy).returncode == 0
    before = sorted((project_copy / "migrations" / "versions").glob("*.py"))
    result = alembic_cli(async_url, "revision", "--autogenerate", "-m", "nothing", cwd=project_copy)
    assert result.returncode == 0, result.stderr
    assert "No schema changes detected: no revision file written." in result.stdout
    assert sorted((project_copy / "migrations" / "versions").glob("*.py")) == before
    result = alembic_cli(async_url, "check", cwd=project_copy)
    assert result.returncode == 0, result.stderr


def test_offline_sql_on_an_async_url(async_url, database_url):
    result = alembic_cli(async_url, "upgrade", "head", "--sql")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE customer" in result.stdout
    assert version(database_url) is None


def test_create_db_builds_on_an_async_url(async_url, database_url):
    result = run_in_project(async_url, "create_db.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Built {async_url.render_as_string(hide_password=True)}: "), result.stdout
    assert version(database_url) == HEAD


def test_create_db_creates_a_missing_database_on_an_async_url(async_url, database_url, dialect):
    if dialect == "sqlite":
        pytest.skip("a SQLite file is made by connecting to it")
    url = async_url.set(database=f"async_{uuid.uuid4().hex[:12]}")
    try:
        result = run_in_project(url, "create_db.py")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("Created database and built"), result.stdout
        assert version(url.set(drivername=database_url.drivername)) == HEAD
    finally:
        drop_database(url.set(drivername=database_url.drivername))


def test_concurrent_upgrades_on_an_async_url_wait_for_the_lock(async_url, database_url):
    outputs = run_together(async_url, "-m", "alembic", "upgrade", "head", times=4, timeout=TIMEOUT)
    assert [code for code, _, _ in outputs] == [0] * 4, outputs
    assert version(database_url) == HEAD


def test_an_unreachable_async_url_is_one_line(async_url, dialect):
    if dialect == "sqlite":
        pytest.skip("a SQLite file has no server to reach")
    result = alembic_cli(async_url.set(host="127.0.0.1", port=1), "current")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout.startswith("FAILED: cannot connect to "), result.stdout


# --- Recipe 3: an async application shares its connection -------------------------------


def upgrade_on(config: Config, shared_as_async: bool, async_url: URL, *, commit: bool) -> list[str]:
    """What an async app does: migrate inside its event loop through run_sync, on its
    AsyncConnection (or the Connection run_sync hands over); returns the tables seen inside."""

    async def main() -> list[str]:
        engine = make_async_engine(async_url)  # on SQLite: transactional DDL, as make_engine's
        try:
            async with engine.connect() as connection:
                transaction = await connection.begin()

                def upgrade(sync_connection) -> list[str]:
                    config.attributes["connection"] = connection if shared_as_async else sync_connection
                    command.upgrade(config, "head")
                    return inspect(sync_connection).get_table_names()

                seen = await connection.run_sync(upgrade)
                await (transaction.commit() if commit else transaction.rollback())
                return seen
        finally:
            await engine.dispose()

    return asyncio.run(main())


@pytest.mark.parametrize("shared_as_async", [True, False], ids=["AsyncConnection", "run_sync-Connection"])
def test_an_async_connection_migrates_and_its_rollback_leaves_no_trace(
    alembic_config, async_url, database_url, dialect, shared_as_async
):
    if dialect in ("mysql", "mariadb"):
        pytest.skip("MariaDB commits every DDL statement implicitly: no transaction can undo it")
    assert "customer" in upgrade_on(alembic_config, shared_as_async, async_url, commit=False)
    assert tables(database_url) == []


def test_an_async_connection_committed_keeps_the_migrations(alembic_config, async_url, database_url):
    upgrade_on(alembic_config, True, async_url, commit=True)
    assert version(database_url) == HEAD


def test_alembic_called_in_an_event_loop_without_run_sync_is_a_one_line_error(alembic_config, async_url):
    async def main() -> None:
        engine = make_async_engine(async_url)
        try:
            alembic_config.attributes["connection"] = engine
            command.upgrade(alembic_config, "head")
        finally:
            await engine.dispose()

    with pytest.raises(CommandError, match="call it through run_sync"):
        asyncio.run(main())
