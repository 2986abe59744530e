"""The baked project works with the lowest versions its pyproject.toml allows.

Every ``>=X`` of the rendered dependencies and dev group (for SQLite, PostgreSQL and
MariaDB) is installed as ``==X`` in a fresh virtualenv, with each floor's own dependencies
at their latest, as pip picks them for a user. There the baked suite runs on each
database, the template's proofs on SQLite, and ruff checks a bake. The floors are read
from the rendered file, so the test follows it. The rest of this suite runs with the
latest versions.

pip must reach the package index: without it the test skips and says why, except under
``CI=true``, where it fails.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import SERVERS, TEMPLATE, BakedProject

DATABASES = ["sqlite", "postgresql", "mysql"]
# Under pytest-xdist (README's -n 2 --dist loadgroup), one worker runs them all: one virtualenv.
pytestmark = pytest.mark.xdist_group("lowest")
# What pip prints when it cannot reach the index, as opposed to finding no such version.
UNREACHABLE = re.compile(r"connection broken by|Could not fetch URL|Max retries exceeded|ProxyError")


@dataclass
class LowestVersions:
    python: Path
    installed: str  # the floors as pip installed them, one line

    def run(self, project: BakedProject, module: str, *args: str, database: str) -> subprocess.CompletedProcess:
        """``python -m module *args`` in the project folder, with this virtualenv's Python."""
        env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "TEST_DATABASE_URL")}
        if SERVERS[database]:
            env["TEST_DATABASE_URL"] = SERVERS[database]
        env["PATH"] = os.pathsep.join([str(self.python.parent), env["PATH"]])
        if module == "pytest":
            args = (*args, "-q", "-rs", "-p", "no:cacheprovider")
        command = [str(self.python), "-m", module, *args]
        return subprocess.run(command, cwd=project.path, env=env, capture_output=True, text=True, timeout=1800)


def floors(pyproject: dict) -> dict[str, str]:
    """Each dependency of the project and its dev group pinned at its floor: ``a[x]>=1`` -> ``a[x]==1``."""
    pinned = {}
    for line in [*pyproject["project"]["dependencies"], *pyproject["dependency-groups"]["dev"]]:
        requirement = Requirement(line)
        lowest = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        assert len(lowest) == 1, f"{line!r} declares no single floor (>=)"
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        pinned[canonicalize_name(requirement.name)] = f"{requirement.name}{extras}=={lowest[0]}"
    return pinned


def also_for_the_proofs(pinned: dict[str, str]) -> list[str]:
    """The template's test-group requirements that tests/proofs imports beyond the project's (hypothesis...)."""
    imported = set()
    for path in (TEMPLATE / "tests" / "proofs").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    providers = importlib.metadata.packages_distributions()  # where this interpreter finds them
    needed = {canonicalize_name(dist) for module in imported for dist in providers.get(module, [])}
    group = tomllib.loads((TEMPLATE / "pyproject.toml").read_text())["dependency-groups"]["test"]
    requirements = [Requirement(line) for line in group if isinstance(line, str)]
    return [str(r) for r in requirements if canonicalize_name(r.name) in needed - pinned.keys()]


@pytest.fixture(scope="session")
def lowest(cookies_session, tmp_path_factory) -> LowestVersions:
    """A virtualenv with every database's floors installed, shared by this module's tests."""
    pinned: dict[str, str] = {}
    for database in DATABASES:
        result = cookies_session.bake(extra_context={"project_name": f"Floors {database}", "database": database})
        assert result.exit_code == 0, result.exception
        pinned.update(floors(tomllib.loads((Path(result.project_path) / "pyproject.toml").read_text())))
    requirements = sorted(pinned.values()) + also_for_the_proofs(pinned)
    folder = tmp_path_factory.mktemp("lowest") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True)
    python = folder / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--retries", "2", "-q"]
    result = subprocess.run([*install, *requirements], capture_output=True, text=True, timeout=1800)
    output = result.stdout + result.stderr
    if result.returncode != 0 and UNREACHABLE.search(output):
        reason = f"pip cannot reach the package index to install {requirements}: {output.strip()[-400:]}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    assert result.returncode == 0, f"installing {requirements} failed:\n{output}"
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True)
    installed = {canonicalize_name(line.split("==")[0]): line for line in freeze.stdout.split()}
    return LowestVersions(python, " ".join(installed[name] for name in sorted(pinned)))


def passed(result: subprocess.CompletedProcess, lowest: LowestVersions, at_least: int) -> None:
    """A pytest run passed at least ``at_least`` tests; one that passed nothing (no server) is a skip."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"with {lowest.installed}:\n{output}"
    count = re.search(r"(\d+) passed", output)
    if count is None:
        pytest.skip(f"the run passed nothing: {output.strip().splitlines()[-3:]}")
    assert int(count.group(1)) >= at_least, f"with {lowest.installed}:\n{output}"
    print(f"{output.strip().splitlines()[-1]} with {lowest.installed}")


@pytest.mark.parametrize("config", ["alembic.ini", "pyproject.toml"])  # Alembic 1.16's [tool.alembic] reading too
@pytest.mark.parametrize("database", DATABASES)
def test_the_baked_suite_passes_with_the_lowest_allowed_versions(bake, lowest, database, config):
    project = bake(project_name=f"Lowest {database}", database=database, config=config)
    passed(lowest.run(project, "pytest", database=database), lowest, at_least=9)


def test_the_bake_passes_the_lowest_allowed_ruff(bake, lowest):
    project = bake(project_name="Lowest ruff")
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = lowest.run(project, "ruff", *command, database="sqlite")
        assert result.returncode == 0, f"with {lowest.installed}:\n{result.stdout}{result.stderr}"


def test_the_proofs_pass_with_the_lowest_allowed_versions(bake, lowest):
    project = bake(project_name="Lowest proofs")
    shutil.copytree(TEMPLATE / "tests" / "proofs", project.path / "proofs")
    passed(lowest.run(project, "pytest", "proofs", database="sqlite"), lowest, at_least=40)
