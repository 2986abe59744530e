"""One tenant per run (migrations/tenants.py, the living cookbook's schema-level multi
tenancy): ``alembic -x tenant=...`` works in that tenant only (a PostgreSQL schema, a
MariaDB database), keeps its version table there, locks that tenant only, gives a shared
connection back as it was, and refuses a bad or unknown tenant in one line, touching nothing.
SQLite refuses tenants in one line, before its file is made."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.util import CommandError
from sqlalchemy import URL, inspect, text

from create_db import create_db
from migrations.lock import migration_lock
from migrations.settings import make_engine
from migrations.tenants import in_tenant, lock_name
from migrations.testing.fixtures import alembic_config_for
from proofs.helpers import alembic_cli, drop_database, run_in_project
from proofs.test_stairway import HEAD

TABLES = ["alembic_version", "customer"]  # and the view customer_view: inspect() lists it apart


def make_tenant(url: URL, name: str) -> URL | None:
    """The tenant ``name`` beside the test's database: a schema in it (PostgreSQL), or a
    database of its own (MariaDB: returned, for the test to drop)."""
    engine = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"CREATE SCHEMA {name}")
            made = None
        else:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
            made = url.set(database=name)
    engine.dispose()
    return made


@pytest.fixture
def tenants(database_url: URL, dialect: str) -> Iterator[list[str]]:
    """Two tenants, acme and globex, named after the test's database (MariaDB's are databases
    of the server, dropped after the test)."""
    if dialect == "sqlite":
        pytest.skip("SQLite has no schemas: test_sqlite_refuses_tenants_in_one_line")
    names = [f"{database_url.database}_acme", f"{database_url.database}_globex"]
    made = [make_tenant(database_url, name) for name in names]
    yield names
    for url in made:
        if url is not None:
            drop_database(url)


def tables_in(url: URL, schema: str | None, views: bool = False) -> list[str]:
    """The tables (``views``: the views) of ``schema`` (a MariaDB database) on ``url``."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            found = inspector.get_view_names(schema=schema) if views else inspector.get_table_names(schema=schema)
            return sorted(found)
    finally:
        engine.dispose()


def version_in(url: URL, schema: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(f"SELECT version_num FROM {schema}.alembic_version")).scalars().all()
    finally:
        engine.dispose()


def test_each_tenant_is_migrated_in_its_own_schema_with_its_own_version_table(
    database_url: URL, tenants: list[str], project_copy: Path
):
    acme, globex = tenants
    result = alembic_cli(database_url, "-x", f"tenant={acme}", "upgrade", "head", cwd=project_copy)
    assert result.returncode == 0, result.stderr
    assert tables_in(database_url, acme) == TABLES and version_in(database_url, acme) == [HEAD]
    assert tables_in(database_url, globex) == [] and tables_in(database_url, None) == []  # nothing elsewhere
    for args in (["check"], ["revision", "--autogenerate", "-m", "nothing"]):  # compared with acme's schema
        result = alembic_cli(database_url, "-x", f"tenant={acme}", *args, cwd=project_copy)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "no revision file written" in result.stdout + result.stderr
    result = alembic_cli(database_url, "-x", f"tenant={globex}", "current", cwd=project_copy)
    assert result.returncode == 0 and HEAD not in result.stdout
    result = alembic_cli(database_url, "-x", f"tenant={acme}", "downgrade", "base", cwd=project_copy)
    assert result.returncode == 0, result.stderr
    assert tables_in(database_url, acme) == ["alembic_version"] and version_in(database_url, acme) == []


def test_offline_sql_for_a_tenant_works_in_it(database_url: URL, tenants: list[str], dialect: str):
    acme = tenants[0]
    result = alembic_cli(database_url, "-x", f"tenant={acme}", "upgrade", "head", "--sql")
    assert result.returncode == 0, result.stderr
    switch = f'SET search_path TO "{acme}";' if dialect == "postgresql" else f"USE `{acme}`;"
    lines = result.stdout.splitlines()
    assert switch in lines and lines.index(switch) < min(i for i, line in enumerate(lines) if "CREATE TABLE" in line)
    assert f"CREATE TABLE {acme}.alembic_version" in result.stdout


@pytest.mark.parametrize("name", ["a;b", "Acme", "x" * 200, "1st"])
def test_a_name_that_is_not_a_tenant_name_is_one_line_and_touches_nothing(database_url: URL, name: str, tmp_path):
    sqlite = database_url.get_backend_name() == "sqlite"
    url = database_url.set(database=str(tmp_path / "never.db")) if sqlite else database_url
    result = alembic_cli(url, "-x", f"tenant={name}", "upgrade", "head")
    said = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0 and said[-1].startswith("FAILED: tenant ") and "Traceback" not in result.stderr
    assert "is not a tenant name" in said[-1] and len(said[-1]) < 200
    assert not (tmp_path / "never.db").exists()


def test_an_unknown_tenant_is_one_line_and_touches_nothing(database_url: URL, tenants: list[str]):
    result = alembic_cli(database_url, "-x", "tenant=nobody_here", "upgrade", "head")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert (result.stdout + result.stderr).strip().splitlines()[-1].startswith("FAILED: tenant 'nobody_here': no ")
    assert tables_in(database_url, None) == [] and all(tables_in(database_url, name) == [] for name in tenants)


def test_the_migration_lock_is_per_tenant(database_url: URL, tenants: list[str], dialect: str):
    """A run holding acme's lock (as env.py takes it) keeps acme's runs waiting (on MariaDB a
    run on the URL .../acme too, which writes the same version table), not globex's."""
    acme, globex = tenants
    engine = make_engine(database_url)
    with engine.connect() as holder, in_tenant(holder, acme):
        with migration_lock(holder, 1, lock_name(dialect, acme, "alembic_version")):
            other = alembic_cli(database_url, "-x", f"tenant={globex}", "upgrade", "head")
            arguments = ["-m", "alembic", "-x", f"tenant={acme}", "upgrade", "head"]
            waiting = [run_in_project(database_url, *arguments, MIGRATION_LOCK_TIMEOUT="1")]
            if dialect != "postgresql":
                arguments = ["-m", "alembic", "upgrade", "head"]
                waiting.append(run_in_project(database_url.set(database=acme), *arguments, MIGRATION_LOCK_TIMEOUT="1"))
    engine.dispose()
    assert other.returncode == 0, other.stderr
    for result in waiting:
        assert result.returncode != 0 and "waiting for the migration lock" in result.stdout + result.stderr
    assert tables_in(database_url, acme) == [] and tables_in(database_url, globex) == TABLES


def test_a_shared_connection_is_given_back_as_it_was(database_url: URL, tenants: list[str], dialect: str):
    """Recipe 3 with a tenant: the application's own connection (a sign-up that migrates the
    new tenant) works in the tenant for the run, and afterwards in what it had before."""
    acme = tenants[0]
    engine = make_engine(database_url)
    where = "SELECT current_setting('search_path')" if dialect == "postgresql" else "SELECT DATABASE()"
    with engine.connect() as connection:
        before = connection.execute(text(where)).scalar_one(), connection.dialect.default_schema_name
        connection.commit()
        config = alembic_config_for(database_url)
        config.attributes["connection"] = connection
        config.attributes["tenant"] = acme
        command.upgrade(config, "head")
        after = connection.execute(text(where)).scalar_one(), connection.dialect.default_schema_name
        connection.commit()
        with connection.begin():  # in the caller's transaction, and a run that fails
            config.attributes["tenant"] = tenants[1]
            with pytest.raises(CommandError):
                command.upgrade(config, "no_such_revision")
            after_failure = connection.execute(text(where)).scalar_one(), connection.dialect.default_schema_name
    engine.dispose()
    assert after == before and after_failure == before
    assert tables_in(database_url, acme) == TABLES and tables_in(database_url, None) == []


def test_sqlite_refuses_tenants_in_one_line(database_url: URL, dialect: str, tmp_path):
    if dialect != "sqlite":
        pytest.skip("SQLite's refusal")
    never = database_url.set(database=str(tmp_path / "never.db"))
    for extra in ([], ["--sql"]):
        result = alembic_cli(never, "-x", "tenant=acme", "upgrade", "head", *extra)
        said = (result.stdout + result.stderr).strip().splitlines()
        assert result.returncode != 0 and said == [said[-1]] and "SQLite has no schemas" in said[-1]
    assert not (tmp_path / "never.db").exists()


def test_a_tenant_on_an_async_url(database_url: URL, tenants: list[str]):
    """The tenant's search_path / USE is set on the connection env.py gets through run_sync."""
    backend = database_url.get_backend_name()
    driver = {"postgresql": "asyncpg", "mysql": "aiomysql", "mariadb": "aiomysql"}[backend]
    for package in ("greenlet", driver):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed (pip install {package})")
    acme = tenants[0]
    async_url = database_url.set(drivername=f"{backend}+{driver}")
    result = alembic_cli(async_url, "-x", f"tenant={acme}", "upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert tables_in(database_url, acme) == TABLES and tables_in(database_url, None) == []
    result = alembic_cli(async_url, "-x", f"tenant={acme}", "check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_commands_that_take_no_tenant_yet_refuse_one(database_url: URL, tenants: list[str]):
    """create_db, at_head and apply_models would work in the URL's own schema: they refuse."""
    for command_name in ("create_db", "at_head", "apply_models"):
        arguments = ["-m", "migrations.cli", "-x", f"tenant={tenants[0]}", command_name]
        result = run_in_project(database_url, *arguments)
        said = (result.stdout + result.stderr).strip().splitlines()
        assert result.returncode != 0 and len(said) == 1 and "does not take a tenant yet" in said[0], said
    config = alembic_config_for(database_url)
    config.attributes["tenant"] = tenants[0]
    with pytest.raises(CommandError, match="does not take a tenant yet"):
        create_db(config)
    assert tables_in(database_url, None) == [] and tables_in(database_url, tenants[0]) == []
