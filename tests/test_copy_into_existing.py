"""The README's "Copy into an existing repository", done for real on a scratch repository.

A scratch repository with its own models package (``shop.db``, a declarative ``Base``) and
its own plain Alembic history gets the baked ``alembic.ini``, ``create_db.py`` and
``migrations/``; the example revisions go, its revision moves in, and the one
``target_metadata`` line of alembic.ini is pointed at ``shop.db:Base.metadata`` (baked with
config=pyproject.toml: the ``[tool.alembic]`` table joins the repository's own pyproject.toml,
and its line is pointed there). Then
create_db.py, upgrade, autogenerate and downgrade run as subprocesses there, on SQLite
files named by ``DATABASE_URL``.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import create_engine, inspect

SHOP_INIT = '"""The existing application: nothing to do with alembic-cookbook."""\n'

SHOP_DB = '''\
"""The existing application's models."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "product"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
'''

# The same models with one more column, for autogenerate to find.
SHOP_DB_WITH_PRICE = SHOP_DB + "    price: Mapped[int | None]\n"

# The existing history: one plain revision, as `alembic init` would have written it.
OWN_REVISION = "5b0a1d2c3e4f"
OWN_REVISION_FILE = f'''\
"""create product

Revision ID: {OWN_REVISION}
Revises:
Create Date: 2024-01-02 03:04:05.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "{OWN_REVISION}"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "product",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade():
    op.drop_table("product")
'''

TARGET_METADATA = "shop.db:Base.metadata"
TARGET_METADATA_LINE = re.compile(r"^target_metadata = .*$", re.MULTILINE)


@dataclass
class ScratchRepo:
    path: Path
    databases: Path
    baked: Path  # the rendered project it was copied from

    @property
    def versions(self) -> Path:
        return self.path / "migrations" / "versions"

    def url(self, name: str) -> str:
        return f"sqlite:///{self.databases / name}"

    def revision_files(self) -> set[Path]:
        return set(self.versions.glob("*.py"))


def run(repo: ScratchRepo, database: str, *args: str) -> subprocess.CompletedProcess:
    """Run this interpreter with ``args`` in the scratch repository, on one SQLite file.

    DATABASE_URL is ours only: whatever the calling environment had is dropped.
    """
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["DATABASE_URL"] = repo.url(database)
    return subprocess.run([sys.executable, *args], cwd=repo.path, env=env, capture_output=True, text=True, timeout=300)


def succeeded(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == 0


def shown(result: subprocess.CompletedProcess) -> str:
    """The command and everything it printed, for an assertion message."""
    command = " ".join(str(arg) for arg in result.args[1:])
    return f"`{command}` exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def alembic(repo: ScratchRepo, database: str, *args: str) -> subprocess.CompletedProcess:
    result = run(repo, database, "-m", "alembic", *args)
    assert succeeded(result), shown(result)
    return result


def columns(repo: ScratchRepo, database: str, table: str) -> list[str]:
    engine = create_engine(repo.url(database))
    try:
        return [column["name"] for column in inspect(engine).get_columns(table)]
    finally:
        engine.dispose()


# The existing repository's own pyproject.toml, for the config=pyproject.toml bake to join.
EXISTING_PYPROJECT = """\
[project]
name = "shop"
version = "1.0"

[tool.ruff]
line-length = 100
"""


def tool_alembic(pyproject: str) -> str:
    """The rendered [tool.alembic] table and its [[tool.alembic.*]] arrays, as text to copy."""
    tables = re.split(r"(?m)^(?=\[)", pyproject)
    return "".join(table for table in tables if re.match(r"\[\[?tool\.alembic[].]", table))


@pytest.fixture(params=["alembic.ini", "pyproject.toml"])
def repo(bake, tmp_path, request) -> ScratchRepo:
    """Steps 1 to 4 of the README on a scratch repository with its own models and history."""
    baked = bake(config=request.param)
    root = tmp_path / "existing-repo"
    databases = tmp_path / "databases"
    databases.mkdir()
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text(SHOP_INIT)
    (root / "shop" / "db.py").write_text(SHOP_DB)
    own_history = tmp_path / "old-history"
    own_history.mkdir()
    (own_history / f"{OWN_REVISION}_create_product.py").write_text(OWN_REVISION_FILE)

    shutil.copy2(baked.path / "alembic.ini", root / "alembic.ini")
    shutil.copy2(baked.path / "create_db.py", root / "create_db.py")
    shutil.copytree(baked.path / "migrations", root / "migrations", ignore=shutil.ignore_patterns("__pycache__"))

    scratch = ScratchRepo(root, databases, baked.path)
    examples = scratch.revision_files()
    assert len(examples) == 4, f"expected the 4 example revisions in the baked project, found {sorted(examples)}"
    for example in examples:
        example.unlink()
    shutil.move(own_history / f"{OWN_REVISION}_create_product.py", scratch.versions)

    settings, value = root / "alembic.ini", TARGET_METADATA
    if request.param == "pyproject.toml":  # its [tool.alembic] joins the repository's own pyproject.toml
        settings, value = root / "pyproject.toml", f'"{TARGET_METADATA}"'
        table = tool_alembic((baked.path / "pyproject.toml").read_text())
        assert table.startswith("[tool.alembic]") and "[[tool.alembic.post_write_hooks]]" in table, table
        settings.write_text(EXISTING_PYPROJECT + "\n" + table)
    edited, count = TARGET_METADATA_LINE.subn(f"target_metadata = {value}", settings.read_text())
    assert count == 1, f"expected exactly one `target_metadata = ...` line in {settings.name}, found {count}"
    settings.write_text(edited)
    return scratch


def test_the_settings_still_parse_with_only_target_metadata_changed(repo):
    ini, pyproject = repo.path / "alembic.ini", repo.path / "pyproject.toml"
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(ini.read_text())
    config = Config(str(ini), toml_file=str(pyproject))
    assert config.get_alembic_option("target_metadata") == TARGET_METADATA
    if pyproject.exists():  # config=pyproject.toml: the ini keeps the URL and logging
        assert not parser.has_option("alembic", "target_metadata")
        assert tomllib.loads(pyproject.read_text())["project"]["name"] == "shop"
        changed = [line for line in pyproject.read_text().splitlines() if line.startswith("target_metadata")]
        assert changed == [f'target_metadata = "{TARGET_METADATA}"']
    else:
        assert parser.get("alembic", "target_metadata") == TARGET_METADATA
        changed = [line for line in ini.read_text().splitlines() if line.startswith("target_metadata")]
        assert changed == [f"target_metadata = {TARGET_METADATA}"]
    assert sorted(path.name for path in repo.revision_files()) == [f"{OWN_REVISION}_create_product.py"]


def test_create_db_builds_a_new_database_stamped_at_the_repository_head(repo):
    result = run(repo, "db1.sqlite", "create_db.py")
    assert succeeded(result), shown(result)
    assert f"stamped at head {OWN_REVISION}." in result.stdout, shown(result)
    assert ": 1 table; stamped" in result.stdout, shown(result)  # counts, not names
    assert columns(repo, "db1.sqlite", "product") == ["id", "name"]
    current = alembic(repo, "db1.sqlite", "current")
    assert f"{OWN_REVISION} (head)" in current.stdout, shown(current)


def test_upgrade_head_replays_the_repository_own_history(repo):
    alembic(repo, "db2.sqlite", "upgrade", "head")
    current = alembic(repo, "db2.sqlite", "current")
    assert f"{OWN_REVISION} (head)" in current.stdout, shown(current)
    assert columns(repo, "db2.sqlite", "product") == ["id", "name"]


def test_autogenerate_after_the_own_history_finds_nothing_and_writes_no_file(repo):
    alembic(repo, "db2.sqlite", "upgrade", "head")
    before = repo.revision_files()
    result = alembic(repo, "db2.sqlite", "revision", "--autogenerate", "-m", "nothing")
    assert "No schema changes detected: no revision file written." in result.stdout, shown(result)
    assert repo.revision_files() == before, (
        f"autogenerate wrote {sorted(repo.revision_files() - before)}: the copied migrations/ "
        f"sees a difference between {TARGET_METADATA} and the repository's own revision\n{shown(result)}"
    )


def test_a_new_model_column_is_autogenerated_upgraded_and_downgraded(repo):
    alembic(repo, "db2.sqlite", "upgrade", "head")
    (repo.path / "shop" / "db.py").write_text(SHOP_DB_WITH_PRICE)
    before = repo.revision_files()

    result = alembic(repo, "db2.sqlite", "revision", "--autogenerate", "-m", "add price")
    written = repo.revision_files() - before
    assert len(written) == 1, f"expected one new revision file, got {sorted(written)}\n{shown(result)}"
    new_file = written.pop()
    text = new_file.read_text()
    assert "add_column" in text and "price" in text, text
    new_revision = new_file.name.split("_")[1]  # file_template: <date>_<rev>_<slug>
    assert re.search(rf"^down_revision\b.*{OWN_REVISION}", text, re.MULTILINE), text

    alembic(repo, "db2.sqlite", "upgrade", "head")
    assert columns(repo, "db2.sqlite", "product") == ["id", "name", "price"]
    current = alembic(repo, "db2.sqlite", "current")
    assert f"{new_revision} (head)" in current.stdout, shown(current)

    alembic(repo, "db2.sqlite", "downgrade", "-1")
    assert columns(repo, "db2.sqlite", "product") == ["id", "name"]
    current = alembic(repo, "db2.sqlite", "current")
    assert OWN_REVISION in current.stdout and new_revision not in current.stdout, shown(current)


def test_the_migration_suite_copied_in_passes_on_the_repository_own_history(repo):
    """Step 6 of the README: the baked tests/ (conftest.py, the migration suite, the recipes)
    copied into the repository's tests/ run on its own history and models, and write nothing."""
    tests = repo.path / "tests"
    tests.mkdir()
    for name in ("__init__.py", "conftest.py", "test_migrations.py", "test_recipes.py"):
        shutil.copy2(repo.baked / "tests" / name, tests / name)

    def files() -> set[Path]:
        return {path for path in repo.path.rglob("*") if "__pycache__" not in path.parts}

    before = files()
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    env["TEST_DATABASE_URL"] = repo.url("suite.sqlite")
    command = [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(command, cwd=repo.path, env=env, capture_output=True, text=True, timeout=600)
    assert succeeded(result), shown(result)
    assert re.search(r"\d+ passed", result.stdout) and "failed" not in result.stdout, shown(result)
    assert files() == before, f"the suite wrote {sorted(map(str, files() - before))}"
