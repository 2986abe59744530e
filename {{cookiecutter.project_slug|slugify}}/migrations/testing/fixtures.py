"""pytest fixtures for tests that need a database: a fresh, empty one for every test.

Import the ones a test folder uses in its ``conftest.py`` (tests/conftest.py does)::

    from migrations.testing.fixtures import alembic_config, database_url, engine, new_database, server

The server is ``TEST_DATABASE_URL`` if set, else ``sqlalchemy.url`` in alembic.ini
(``DATABASE_URL`` is never used here, so tests cannot touch a real database). SQLite gets
a file in the test's tmp_path; PostgreSQL and MariaDB get a uniquely named database,
created for the test and dropped after it. A server that cannot be reached skips the
tests that need it, with the reason, except under ``CI=true``: there it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import URL, Engine, make_url
from sqlalchemy.exc import OperationalError

from migrations.failures import describe
from migrations.settings import make_engine, server_url

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def test_server() -> URL:
    """The server under test: ``TEST_DATABASE_URL``, else alembic.ini's ``sqlalchemy.url``."""
    raw = os.environ.get("TEST_DATABASE_URL") or Config(ALEMBIC_INI).get_main_option("sqlalchemy.url")
    return make_url(raw)


test_server.__test__ = False  # a helper, not a test


def unreachable(url: URL) -> str | None:
    """Why the server of ``url`` cannot be used, or None when it can (SQLite always can)."""
    if url.get_backend_name() == "sqlite":
        return None
    try:
        make_engine(server_url(url)).connect().close()
    except OperationalError as error:
        return (
            f"{url.get_backend_name()} server {url.render_as_string(hide_password=True)} "
            f"is not reachable ({describe(error)}); set TEST_DATABASE_URL to one that is"
        )
    return None


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
        admin = make_engine(server_url(url)).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {connection.dialect.identifier_preparer.quote(url.database)}")
        admin.dispose()
        self.created.append(url)
        return url

    def drop_all(self) -> None:
        """Drop the databases ``new()`` made, and only those."""
        if not self.created:
            return
        admin = make_engine(server_url(self.server)).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            force = " WITH (FORCE)" if connection.dialect.name == "postgresql" else ""
            for url in self.created:
                name = connection.dialect.identifier_preparer.quote(url.database)
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        admin.dispose()
        self.created.clear()


@pytest.fixture(scope="session")
def server() -> URL:
    """The database server under test (a SQLite URL means: files in tmp_path)."""
    url = test_server()
    reason = unreachable(url)
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture
def dialect(server: URL) -> str:
    return server.get_backend_name()


@pytest.fixture
def new_database(server: URL, tmp_path: Path) -> Iterator[Callable[[], URL]]:
    """Call it for another empty database; all of them are dropped after the test."""
    databases = Databases(server, tmp_path)
    yield databases.new
    databases.drop_all()


@pytest.fixture
def database_url(new_database: Callable[[], URL]) -> URL:
    """An empty database for this test."""
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
    config.attributes["configure_logger"] = False  # leave pytest's logging alone
    return config
