"""Fixtures for the template's proofs, run inside a baked project (see tests/test_proofs.py):
the project's own database fixtures (migrations/testing/fixtures.py), and a copy of the
project to add revisions or edit models in, so the baked project itself is never written."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrations.testing.fixtures import project_config
from proofs.helpers import PROJECT

# The baked project's own fixtures and collector settings (tests/conftest.py).
from tests.conftest import *  # noqa: F403


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the migration unit and the models, to add revisions or edit models in."""
    copy = tmp_path / "project"
    package = project_config().get_alembic_option("target_metadata").split(":")[0].split(".")[0]
    ignore = shutil.ignore_patterns("__pycache__", "*.db")
    for name in ("migrations", package):
        shutil.copytree(PROJECT / name, copy / name, ignore=ignore)
    for name in ("alembic.ini", "create_db.py", "pyproject.toml"):
        shutil.copy2(PROJECT / name, copy / name)
    return copy


@pytest.fixture(autouse=True)
def head_file_kept() -> Iterator[None]:
    """A proof that writes a revision into the baked project itself (and removes it) leaves
    migrations/head.txt as it found it: the post-write hook rewrites it (migrations/heads.py)."""
    path = PROJECT / "migrations" / "head.txt"
    before = path.read_bytes() if path.exists() else None
    yield
    if before is not None and (not path.exists() or path.read_bytes() != before):
        path.write_bytes(before)
