"""An installed application migrates itself: the baked project, built as a wheel and
installed in a fresh virtualenv, runs ``upgrade head`` and ``create_db`` from a folder with
no checkout, as its README's "From an installed wheel" shows."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url

from tests.conftest import SERVERS

# The README's snippet, on two databases: one migrated, one built by create_db.
MIGRATE = """
import sys

import migrations
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from create_db import create_db


def migration_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "migrations:")
    config.set_main_option("target_metadata", sys.argv[1])
    config.attributes["database_url"] = url
    return config


command.upgrade(migration_config(sys.argv[2]), "head")
print(create_db(migration_config(sys.argv[3])), file=sys.stderr)
print(migrations.__file__)
print(ScriptDirectory.from_config(migration_config(sys.argv[2])).get_current_head())
for url in sys.argv[2:]:
    with create_engine(url).connect() as connection:
        print(connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
"""


def run(*command: str | Path, cwd: Path) -> str:
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result.stdout


def database_urls(database: str, tmp_path: Path) -> list[str]:
    """Two empty databases: SQLite files, or new databases on the server."""
    if database == "sqlite":
        return [f"sqlite:///{tmp_path / name}.db" for name in ("upgraded", "created")]
    server = make_url(SERVERS[database])
    names = [f"installed_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return [server.set(database=name).render_as_string(hide_password=False) for name in names]


def drop_databases(database: str, urls: list[str]) -> None:
    if database == "sqlite":
        return
    admin = create_engine(SERVERS[database], isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for url in urls:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    admin.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_an_installed_wheel_migrates_a_new_database_without_a_checkout(bake, database, tmp_path):
    project = bake(project_name=f"Installed {database}", database=database)
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist", ".", cwd=project.path)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", wheel, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(project.path / "alembic.ini")
    urls = database_urls(database, tmp_path)
    try:
        output = run(python, "-c", MIGRATE, ini["alembic"]["target_metadata"], *urls, cwd=elsewhere)
    finally:
        drop_databases(database, urls)
    location, head, upgraded, created = output.split()
    assert Path(location).is_relative_to(venv)
    assert head != "None" and upgraded == created == head
