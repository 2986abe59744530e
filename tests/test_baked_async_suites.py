"""Each baked project's own tests pass on an async TEST_DATABASE_URL (issue 13), through the
async driver: sqlite+aiosqlite, postgresql+asyncpg, postgresql+psycopg_async and
mysql+aiomysql, one bake per database.

No sync driver stands in for the async one: on postgresql+asyncpg, psycopg cannot even be
imported (an application that has only the async driver installed), and on every URL a
census of the suite's own connections (tests/plugins/driver_census.py) must count the
async driver's, and on the servers no other. On SQLite, create_db() and the alembic
command open an aiosqlite URL's file with sqlite3 by design (the baked README says so),
so only the count of aiosqlite's is checked there.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.conftest import SERVERS
from tests.test_baked_suites import run_suite

PLUGINS = Path(__file__).resolve().parent / "plugins"
ASYNC_DRIVERS = {"sqlite": ["aiosqlite"], "postgresql": ["asyncpg", "psycopg_async"], "mysql": ["aiomysql"]}
# The sync drivers an application with only asyncpg installed does not have.
NOT_INSTALLED = {"asyncpg": ["psycopg", "psycopg2"]}


def async_url(database: str, driver: str) -> str:
    if SERVERS[database] is None:
        return f"sqlite+{driver}:///test.db"  # the suite's databases are files in its tmp_path
    server = make_url(SERVERS[database])
    return server.set(drivername=f"{server.get_backend_name()}+{driver}").render_as_string(hide_password=False)


def without(modules: list[str], folder: Path) -> Path:
    """A folder that, first on PYTHONPATH, makes each of ``modules`` fail to import."""
    for module in modules:
        (folder / module).mkdir(parents=True)
        failing = f"raise ImportError({module + ' is not installed'!r}, name={module!r})\n"
        (folder / module / "__init__.py").write_text(failing)
    return folder


@pytest.mark.parametrize("database", list(ASYNC_DRIVERS))
def test_the_baked_projects_tests_pass_on_an_async_url(bake, database, tmp_path):
    project = bake(project_name=f"Async {database}", database=database)
    for driver in ASYNC_DRIVERS[database]:
        census = tmp_path / f"{driver}.json"
        blocked = without(NOT_INSTALLED.get(driver, []), tmp_path / f"without-{driver}")
        path = os.pathsep.join(filter(None, [str(blocked), str(PLUGINS), os.environ.get("PYTHONPATH")]))
        env = {"PYTHONPATH": path, "DRIVER_CENSUS": str(census)}
        output = run_suite(project, database, async_url(database, driver), env, args=("-p", "driver_census"))
        assert int(re.search(r"(\d+) passed", output).group(1)) >= 9
        connections = json.loads(census.read_text())
        # the stairway's, the walks' databases, upgrade head's, the recipes': more than the few the
        # sync sqlite3 opens on SQLite (create_db() and the alembic command, by design)
        assert connections.get(driver, 0) > connections.get("pysqlite", 0), f"{driver}: {connections}"
        assert connections.get(driver, 0) >= 8, f"{driver}: {connections}"
        if database != "sqlite":
            assert set(connections) == {driver}, f"{driver}: {connections}"
