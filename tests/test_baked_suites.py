"""Each baked project's own test suite passes on its database: SQLite, PostgreSQL, MariaDB.

The baked suite skips (with its reason) when its server is unreachable, and fails under
CI=true; a run that passed nothing is reported here as a skip, never as a pass.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import SERVERS


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mysql"])
def test_the_baked_projects_tests_pass_on_its_database(bake, database):
    project = bake(project_name=f"Suite {database}", database=database)
    env = {"TEST_DATABASE_URL": SERVERS[database]} if SERVERS[database] else {}
    result = project.run("python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    passed = re.search(r"(\d+) passed", output)
    if passed is None:
        pytest.skip(f"the baked {database} suite ran nothing: {output.strip().splitlines()[-3:]}")
    print(f"{database}: {output.strip().splitlines()[-1]}")
    assert int(passed.group(1)) >= 25
