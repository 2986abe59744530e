"""Fixtures for the template's proofs, run inside a baked project (see tests/test_proofs.py):
the project's own database fixtures (migrations/testing/fixtures.py), and a copy of the
project to add revisions or edit models in, so the baked project itself is never written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.config import Config

# First: the collector settings apply to what the imports after them make.
from migrations.testing.collector import pytest_collection, pytest_configure  # noqa: F401
from migrations.testing.fixtures import (  # noqa: F401
    alembic_config,
    database_at_head,
    database_url,
    dialect,
    engine,
    head_template,
    new_database,
    new_database_at_head,
    server,
)
from proofs.helpers import ALEMBIC_INI, PROJECT


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the migration unit and the models, to add revisions or edit models in."""
    copy = tmp_path / "project"
    package = Config(ALEMBIC_INI).get_main_option("target_metadata").split(":")[0].split(".")[0]
    ignore = shutil.ignore_patterns("__pycache__", "*.db")
    for name in ("migrations", package):
        shutil.copytree(PROJECT / name, copy / name, ignore=ignore)
    for name in ("alembic.ini", "create_db.py", "pyproject.toml"):
        shutil.copy2(PROJECT / name, copy / name)
    return copy
