"""The template's proofs (tests/proofs/) pass against a baked project on each database.

The proofs test the migration environment's machinery on the example history: every
recipe, the safety promises (concurrency, kills, lock timeout, passwords), schema
comparison, the stairway catching each kind of fault, every replaceable kind, declared
objects. They need a baked project to import (its ``create_db``, ``migrations`` and
models), so each database's bake gets a copy of tests/proofs/ as ``proofs/`` and runs it
with pytest there; the baked project's own tests/ stay the user's.
"""

from __future__ import annotations

import re
import shutil

import pytest

from tests.conftest import SERVERS, TEMPLATE

# Where the settings live matters to reading them, not to the database: the pyproject.toml
# bake runs, on SQLite, the proofs of what reads settings (script_location, file_template,
# target_metadata, the post-write hooks, the lock timeout, the autogenerate options, sections);
# its baked suite runs on all three databases (test_baked_suites.py).
SETTINGS_PROOFS = [
    "test_pyproject_config.py",
    "test_autogenerate.py",
    "test_create_db.py",
    "test_data_steps.py",
    "test_environments.py",
    "test_newer_recipes.py",
    "test_safety.py",
    # the post-write hook that rewrites head.txt, and a squash, read from [tool.alembic]
    "test_long_histories.py::test_two_branches_that_each_add_a_revision_conflict_in_git_and_the_check_names_both",
    "test_long_histories.py::test_a_squash_of_the_example_history_keeps_the_whole_suite_passing",
    # deploy_lint_baseline read from [tool.alembic]
    "test_deploy_lint.py::test_the_command_lints_what_the_database_has_not_applied_and_the_suite_fails_on_what_is_open",
]
COMBINATIONS = [
    pytest.param("sqlite", "alembic.ini", ["proofs"], 40, id="sqlite"),
    pytest.param("postgresql", "alembic.ini", ["proofs"], 40, id="postgresql"),
    pytest.param("mysql", "alembic.ini", ["proofs"], 40, id="mysql"),
    pytest.param("sqlite", "pyproject.toml", [f"proofs/{name}" for name in SETTINGS_PROOFS], 20, id="sqlite-pyproject"),
]


@pytest.mark.parametrize(("database", "config", "paths", "at_least"), COMBINATIONS)
def test_the_proofs_pass_against_a_baked_project(bake, database, config, paths, at_least):
    project = bake(project_name=f"Proofs {database}", database=database, config=config)
    shutil.copytree(TEMPLATE / "tests" / "proofs", project.path / "proofs")
    env = {"TEST_DATABASE_URL": SERVERS[database]} if SERVERS[database] else {}
    command = ["python", "-m", "pytest", *paths, "-p", "no:cacheprovider", "-q", "-rs"]
    result = project.run(*command, env=env, timeout=1800)  # minutes, longer beside another worker
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    print(f"{database}, {config}: {output.strip().splitlines()[-1]}")
    passed = re.search(r"(\d+) passed", output)
    assert passed is not None and int(passed.group(1)) >= at_least, output
