"""Each baked project's own tests pass on its database (SQLite, PostgreSQL, MariaDB): on the
example history, and on a history the user wrote after deleting it, without writing a
single file into the project; with Alembic's settings in alembic.ini and in pyproject.toml.

The baked suite skips (with its reason) when its server is unreachable, and fails under
CI=true; a run that passed nothing is reported here as a skip, never as a pass.
"""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest
from sqlalchemy import create_engine, make_url

from tests.conftest import SERVERS, BakedProject

DATABASES = ["sqlite", "postgresql", "mysql"]
CONFIGS = ["alembic.ini", "pyproject.toml"]  # where the bake keeps Alembic's settings and ours

# What a new user writes on day one, in place of the example models.
OWN_MODELS = '''"""The application's models."""

from datetime import datetime

from sqlalchemy import Enum, ForeignKey, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    created: Mapped[datetime] = mapped_column(server_default=func.now())


class Login(Base):
    __tablename__ = "login"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    method: Mapped[str] = mapped_column(Enum("password", "token", name="login_method"))  # a type on PostgreSQL


metadata = Base.metadata
'''


def run_suite(
    project: BakedProject, database: str, url: str | None = None, env: dict[str, str] | None = None, args=()
) -> str:
    """The baked project's ``pytest`` on ``url`` (default: the database's server), with ``env``
    and pytest's ``args`` added; its output. A run that passed nothing is skipped."""
    label = url.split(":")[0] if url else database  # the scheme: nothing of a password
    url = url or SERVERS[database]
    env = {**({"TEST_DATABASE_URL": url} if url else {}), **(env or {})}
    result = project.run("python", "-m", "pytest", "-q", "-rs", *args, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    passed = re.search(r"(\d+) passed", output)
    if passed is None:
        pytest.skip(f"the baked {database} suite ran nothing: {output.strip().splitlines()[-3:]}")
    assert "failed" not in output.strip().splitlines()[-1]
    print(f"{label}: {output.strip().splitlines()[-1]}")
    return output


def git(project: BakedProject, *args: str) -> str:
    command = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args]
    result = subprocess.run(command, cwd=project.path, capture_output=True, text=True, check=True)
    return result.stdout


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("database", DATABASES)
def test_the_baked_projects_tests_pass_on_its_database(bake, database, config):
    project = bake(project_name=f"Suite {database}", database=database, config=config)
    before = test_databases(database)
    output = run_suite(project, database)
    assert int(re.search(r"(\d+) passed", output).group(1)) >= 9
    assert test_databases(database) == before  # the ones made ahead too (migrations/testing/ahead.py)


def test_databases(database: str) -> set[str]:
    """The databases on the server named as the baked fixtures name theirs (test_ and 12 hex digits)."""
    if SERVERS[database] is None:
        return set()
    engine = create_engine(SERVERS[database])
    try:
        with engine.connect() as connection:
            listing = "SELECT datname FROM pg_database" if database == "postgresql" else "SHOW DATABASES"
            names = connection.exec_driver_sql(listing).scalars().all()
    finally:
        engine.dispose()
    return {name for name in names if re.fullmatch(r"test_[0-9a-f]{12}", name)}


test_databases.__test__ = False  # a helper, not a test


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("database", DATABASES)
def test_the_baked_tests_pass_on_the_users_own_history_and_write_nothing(bake, database, config, tmp_path):
    project = bake(project_name=f"Own {database}", database=database, config=config)
    for revision in (project.path / "migrations" / "versions").glob("*.py"):
        revision.unlink()
    (project.path / project.path.name.replace("-", "_") / "models.py").write_text(OWN_MODELS)
    if SERVERS[database] is None:
        scratch = make_url(f"sqlite:///{tmp_path / 'scratch.db'}")
    else:
        scratch = make_url(SERVERS[database]).set(database=f"test_{uuid.uuid4().hex[:12]}")
    admin = None if SERVERS[database] is None else create_engine(SERVERS[database], isolation_level="AUTOCOMMIT")
    if admin is not None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {scratch.database}")
    try:
        made = project.run(
            "python", "-m", "alembic", "revision", "--autogenerate", "-m", "accounts and logins",
            env={"DATABASE_URL": scratch.render_as_string(hide_password=False)},
        )  # fmt: skip
    finally:
        if admin is not None:
            with admin.connect() as connection:
                connection.exec_driver_sql(f"DROP DATABASE {scratch.database}")
            admin.dispose()
    assert made.returncode == 0, made.stdout + made.stderr
    written = list((project.path / "migrations" / "versions").glob("*_accounts_and_logins.py"))
    assert len(written) == 1, made.stdout
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "own history")
    before = untracked(project)
    output = run_suite(project, database)
    assert int(re.search(r"(\d+) passed", output).group(1)) >= 8
    assert git(project, "status", "--porcelain") == ""
    assert untracked(project) == before  # not even an ignored file (a database, a revision)


def untracked(project: BakedProject) -> list[str]:
    """Files git does not track, ignored ones too, but for Python's and pytest's caches."""
    status = git(project, "status", "--porcelain", "--ignored", "--untracked-files=all").splitlines()
    return [line for line in status if not re.search(r"__pycache__/|\.pytest_cache/", line)]
