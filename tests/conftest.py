"""Baking helpers for the template's tests.

``bake(**options)`` renders the template with pytest-cookies, refuses option names that
cookiecutter.json does not have (pytest-cookies would silently ignore them), asserts
that baking worked and shows the options when it did not. ``BakedProject`` wraps the
result: ``has_file``, ``read``, ``run``.

Database servers for the baked projects' own tests: ``TEST_POSTGRESQL_URL`` and
``TEST_MYSQL_URL`` (defaults: the local servers, trust auth).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[1]
OPTIONS = {key for key in json.loads((TEMPLATE / "cookiecutter.json").read_text()) if not key.startswith("_")}
SERVERS = {
    "sqlite": None,
    "postgresql": os.environ.get("TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    "mysql": os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}


@dataclass
class BakedProject:
    path: Path
    options: dict[str, str]

    def has_file(self, relative: str) -> bool:
        return (self.path / relative).is_file()

    def read(self, relative: str) -> str:
        return (self.path / relative).read_text()

    def files(self) -> list[Path]:
        return sorted(path for path in self.path.rglob("*") if path.is_file() and "__pycache__" not in path.parts)

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
        """Run a command in the project folder; ``python`` means this interpreter."""
        command = [sys.executable, *args[1:]] if args[0] == "python" else list(args)
        return subprocess.run(
            command,
            cwd=self.path,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture
def bake(cookies) -> Callable[..., BakedProject]:
    def bake(**options: str) -> BakedProject:
        unknown = set(options) - OPTIONS
        if unknown:
            raise ValueError(f"not in cookiecutter.json: {sorted(unknown)} (known: {sorted(OPTIONS)})")
        result = cookies.bake(extra_context=options)
        assert result.exit_code == 0, f"baking with {options} failed: {result.exception!r}"
        return BakedProject(Path(result.project_path), options)

    return bake


# tests/proofs/ runs inside baked projects (tests/test_proofs.py), not here.
collect_ignore = ["proofs"]

# The longest tests first, so that two workers (pytest -n 2, README) finish together:
# each proofs bake takes minutes, the lowest-versions tests share a virtualenv.
LONGEST_FIRST = ("test_proofs.py", "test_lowest_versions.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within each file stays
