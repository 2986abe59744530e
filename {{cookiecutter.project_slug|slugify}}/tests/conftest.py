"""Fixtures: a fresh, empty database for every test, on the server this project uses.

The server is ``TEST_DATABASE_URL`` if set, else ``sqlalchemy.url`` in alembic.ini
(``DATABASE_URL`` is never used here, so the tests cannot touch a real database).
SQLite gets a file in the test's tmp_path; PostgreSQL and MariaDB get a uniquely named
database, created for the test and dropped after it. A server that cannot be reached
skips the tests that need it, with the reason, except under ``CI=true``: there it fails.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path


def started_as_pytest() -> bool:
    """Whether this process was started as ``pytest`` or ``python -m pytest``."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None:
        return spec.name in ("pytest", "pytest.__main__")
    return Path(getattr(main, "__file__", None) or "").stem in ("pytest", "py.test")


# gc.freeze() is for the pytest command only, a process that ends with the run (a program
# that calls pytest.main() or imports a test helper goes on: nothing of it is frozen). What
# exists when this file is imported (pytest, mostly) lives as long as the run: frozen now,
# it is left out of the garbage collections that the imports below set off (Alembic,
# SQLAlchemy), and of every later one. See pytest_collection. (Hence E402 in pyproject.toml.)
FREEZE = hasattr(gc, "freeze") and started_as_pytest()  # CPython has gc.freeze()
if FREEZE:
    gc.freeze()
GC_ENABLED_AT_START = gc.isenabled()

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Generator, Iterator

import pytest
from alembic.config import Config
from sqlalchemy import URL, Engine, make_url
from sqlalchemy.exc import OperationalError

from create_db import drop_database, ensure_database_exists
from migrations.failures import describe
from migrations.settings import make_engine, server_url

PROJECT = Path(__file__).resolve().parents[1]
ALEMBIC_INI = PROJECT / "alembic.ini"


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    """The tests are collected with the garbage collector off, then (under the pytest
    command) what has been made by then is ``gc.freeze()``-d; the collector is on again
    afterwards if it was before, however collection ends.

    What is imported by then (Alembic, SQLAlchemy, the test modules) lives as long as the
    test run. Frozen, it is left out of every later garbage collection, which otherwise
    walks it again each time; with the collector off, the test modules' imports are not
    walked over and over while they happen. On the template's 100-revision benchmark
    (benchmarks/bench_migration_suite.py): the collector took 0.36-0.39 s of a 2.3 s run
    with neither, 0.16-0.22 s once frozen; freezing at this file's import too, with the
    collector off while collecting and no full collection before the freeze, saved another
    0.04-0.05 s of a 1.0 s run. The garbage the imports leave (about 1% of the objects) is
    frozen with the rest rather than paid for with that full collection. What the tests
    make is collected as usual. For the end, see ``pytest_configure``.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return (yield)
    finally:
        if FREEZE:
            gc.freeze()
        if enabled:
            gc.enable()


def pytest_configure(config: pytest.Config) -> None:
    """At the very end of the pytest command, the process is about to exit, and the
    interpreter's last garbage collection would walk every object still alive, none of it
    garbage (pytest has just collected): frozen too, the exit takes 0.03 s instead of 0.4 s
    on that benchmark."""
    # pytest calls this before its own plugins' pytest_configure (the later a plugin, the
    # sooner), so this cleanup is registered first and runs last: after pytest's final
    # garbage collection (unraisableexception's).
    if FREEZE:
        config.add_cleanup(gc.freeze)


@pytest.fixture(scope="session")
def server() -> URL:
    """The database server under test (a SQLite URL means: files in tmp_path)."""
    raw = os.environ.get("TEST_DATABASE_URL") or Config(ALEMBIC_INI).get_main_option("sqlalchemy.url")
    url = make_url(raw)
    if url.get_backend_name() != "sqlite":
        try:
            make_engine(server_url(url)).connect().close()
        except OperationalError as error:
            reason = (
                f"{url.get_backend_name()} server {url.render_as_string(hide_password=True)} "
                f"is not reachable ({describe(error)}); "
                "set TEST_DATABASE_URL to one that is"
            )
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"CI=true and {reason}", pytrace=False)
            pytest.skip(reason)
    return url


@pytest.fixture
def dialect(server: URL) -> str:
    return server.get_backend_name()


class Databases:
    """Empty databases on the server under test, each uniquely named (SQLite: a file in
    ``folder``), made by ``new()`` and dropped by ``drop_all()``."""

    def __init__(self, server: URL, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.created: list[URL] = []

    def new(self) -> URL:
        if self.server.get_backend_name() == "sqlite":
            return make_url(f"sqlite:///{self.folder / f'{uuid.uuid4().hex[:12]}.sqlite'}")
        url = self.server.set(database=f"test_{uuid.uuid4().hex[:12]}")
        ensure_database_exists(url)
        self.created.append(url)
        return url

    def drop_all(self) -> None:
        for url in self.created:
            drop_database(url)


@pytest.fixture
def new_database(server: URL, tmp_path: Path) -> Iterator[Callable[[], URL]]:
    """Call it for another empty database; all of them are dropped after the test."""
    databases = Databases(server, tmp_path)
    yield databases.new
    databases.drop_all()


@pytest.fixture
def database_url(new_database: Callable[[], URL]) -> URL:
    return new_database()


@pytest.fixture
def engine(database_url: URL) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def alembic_config(database_url: URL) -> Config:
    """The project's alembic.ini, pointed at this test's database."""
    config = Config(ALEMBIC_INI)
    config.attributes["database_url"] = database_url
    return config


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


def alembic_cli(database_url: URL, *args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    """Run the ``alembic`` command as a user would, in the project folder (or a copy)."""
    return run_in_project(database_url, "-m", "alembic", *args, cwd=cwd)


# Variables of the test's own environment that would change what a subprocess does.
OWN_VARIABLES = ("DATABASE_URL", "MIGRATION_LOCK_TIMEOUT", "SLEEP_IN_MIGRATION", "SLEEP_MARKER")


def environment(database_url: URL | str, **extra: str) -> dict[str, str]:
    """The environment a subprocess of a test gets: this one, on ``database_url``."""
    env = {name: value for name, value in os.environ.items() if name not in OWN_VARIABLES}
    if isinstance(database_url, URL):
        database_url = database_url.render_as_string(hide_password=False)
    return {**env, "DATABASE_URL": database_url, **extra}


def run_in_project(
    database_url: URL | str, *args: str, cwd: Path = PROJECT, **extra: str
) -> subprocess.CompletedProcess[str]:
    """``python *args`` in the project folder (or a copy), on ``database_url``, as a user would."""
    env = environment(database_url, **extra)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
