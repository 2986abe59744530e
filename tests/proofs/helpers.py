"""Helpers for the template's proofs, which run inside a baked project (copied there as
``proofs/`` by tests/test_proofs.py): run its commands as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import URL

from migrations.settings import make_engine, server_url
from migrations.testing.fixtures import ALEMBIC_INI

PROJECT = ALEMBIC_INI.parent


# Variables of the test's own environment that would change what a subprocess does.
OWN_VARIABLES = ("DATABASE_URL", "MIGRATION_LOCK_TIMEOUT", "DDL_LOCK_TIMEOUT", "SLEEP_IN_MIGRATION", "SLEEP_MARKER")


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


def alembic_cli(database_url: URL, *args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    """Run the ``alembic`` command as a user would, in the project folder (or a copy)."""
    return run_in_project(database_url, "-m", "alembic", *args, cwd=cwd)


def drop_database(url: URL) -> None:
    """Drop a PostgreSQL/MariaDB database a test made under a name of its own, if it is there."""
    admin = make_engine(server_url(url)).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        name = connection.dialect.identifier_preparer.quote(url.database)
        force = " WITH (FORCE)" if connection.dialect.name == "postgresql" else ""
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
    admin.dispose()


def run_together(database_url: URL | str, *args: str, times: int, timeout: int = 300) -> list[tuple[int, str, str]]:
    """``python *args`` started ``times`` at once in the project folder: (exit code, out, err) each."""
    env = environment(database_url)
    processes = [
        subprocess.Popen(
            [sys.executable, *args], cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(times)
    ]
    outputs = [process.communicate(timeout=timeout) for process in processes]
    return [(process.returncode, out, err) for process, (out, err) in zip(processes, outputs, strict=True)]
