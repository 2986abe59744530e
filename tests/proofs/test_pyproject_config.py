"""Alembic's pyproject layout: with every setting but the URL and logging moved from
alembic.ini into ``[tool.alembic]`` in pyproject.toml (as ``alembic init -t pyproject``
lays them out), upgrade, create_db.py, autogenerate and the project's own tests still work."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import URL

from proofs.helpers import PROJECT, alembic_cli, environment, run_in_project

LOCK_TIMEOUT = 7  # not the project's 60: seen only if read from pyproject.toml

TOOL_ALEMBIC = """
[tool.alembic]
script_location = "%(here)s/migrations"
file_template = "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"
prepend_sys_path = ["%(here)s"]
target_metadata = "{target_metadata}"
migration_lock_timeout = "{lock_timeout}"

[[tool.alembic.post_write_hooks]]
name = "ruff"
type = "module"
module = "migrations.format_revision"
options = "REVISION_SCRIPT_FILENAME"
cwd = "%(here)s"
"""


@pytest.fixture
def pyproject_project(tmp_path: Path) -> Path:
    """A copy of the project whose alembic.ini keeps only the URL and logging: its settings moved
    by hand into pyproject.toml, as a user of an ini bake would, or as a pyproject bake has them."""
    copy = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__", "*.db", "proofs", ".pytest_cache", ".venv", ".git")
    shutil.copytree(PROJECT, copy, ignore=ignore)
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(copy / "alembic.ini")
    pyproject = copy / "pyproject.toml"
    if "target_metadata" not in ini["alembic"]:  # baked with config=pyproject.toml: already there
        baked = pyproject.read_text()
        assert baked.count('migration_lock_timeout = "60"') == 1
        ours = f'migration_lock_timeout = "{LOCK_TIMEOUT}"'
        pyproject.write_text(baked.replace('migration_lock_timeout = "60"', ours))
        return copy
    target_metadata = ini["alembic"]["target_metadata"]
    for key in list(ini["alembic"]):
        if key != "sqlalchemy.url":
            ini.remove_option("alembic", key)
    ini.remove_section("post_write_hooks")
    with (copy / "alembic.ini").open("w") as file:
        ini.write(file)
    tool = TOOL_ALEMBIC.format(target_metadata=target_metadata, lock_timeout=LOCK_TIMEOUT)
    pyproject.write_text(pyproject.read_text() + tool)
    return copy


def test_the_ini_keeps_only_the_url_and_logging(pyproject_project: Path):
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(pyproject_project / "alembic.ini")
    assert list(ini["alembic"]) == ["sqlalchemy.url"]
    assert "post_write_hooks" not in ini and "loggers" in ini


def test_upgrade_head_and_autogenerate_read_pyproject(pyproject_project: Path, database_url: URL):
    upgraded = alembic_cli(database_url, "upgrade", "head", cwd=pyproject_project)
    assert upgraded.returncode == 0, upgraded.stderr
    versions = pyproject_project / "migrations" / "versions"
    before = set(versions.glob("*.py"))
    nothing = alembic_cli(database_url, "revision", "--autogenerate", "-m", "nothing", cwd=pyproject_project)
    assert nothing.returncode == 0, nothing.stderr
    assert "no revision file written" in nothing.stdout
    assert set(versions.glob("*.py")) == before
    checked = alembic_cli(database_url, "check", cwd=pyproject_project)
    assert checked.returncode == 0, checked.stderr


def test_a_model_change_is_written_with_the_pyproject_file_template(pyproject_project: Path, database_url: URL):
    assert alembic_cli(database_url, "upgrade", "head", cwd=pyproject_project).returncode == 0
    package = next(path.parent for path in pyproject_project.glob("*/models.py"))
    with (package / "models.py").open("a") as models:
        models.write("\nimport sqlalchemy as sa  # noqa: E402\n\n")
        models.write('sa.Table("probe", metadata, sa.Column("id", sa.Integer, primary_key=True))\n')
    versions = pyproject_project / "migrations" / "versions"
    before = set(versions.glob("*.py"))
    written = alembic_cli(database_url, "revision", "--autogenerate", "-m", "probe", cwd=pyproject_project)
    assert written.returncode == 0, written.stderr
    (new,) = set(versions.glob("*.py")) - before
    assert re.fullmatch(r"\d{8}_[0-9a-f]{12}_probe\.py", new.name), new.name
    assert "op.create_table(" in new.read_text()


def test_create_db_reads_pyproject(pyproject_project: Path, database_url: URL):
    created = run_in_project(database_url, "create_db.py", cwd=pyproject_project)
    assert created.returncode == 0, created.stderr
    current = alembic_cli(database_url, "current", cwd=pyproject_project)
    assert current.returncode == 0 and "(head)" in current.stdout, current.stdout + current.stderr


def test_migration_lock_timeout_is_read_from_pyproject(pyproject_project: Path, database_url: URL):
    code = "from migrations.lock import lock_timeout; from migrations.testing.fixtures import project_config; "
    code += "print(lock_timeout(project_config()))"
    result = run_in_project(database_url, "-c", code, cwd=pyproject_project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{float(LOCK_TIMEOUT)}"


def test_the_projects_own_tests_pass_with_pyproject_configuration(pyproject_project: Path, database_url: URL):
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    env = environment(database_url)
    result = subprocess.run(command, cwd=pyproject_project, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", result.stdout), result.stdout[-2000:]
