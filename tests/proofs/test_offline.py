"""Offline parity: the SQL of `alembic upgrade head --sql`, run by the database's own
client (psql, mariadb), builds the same schema as the online `alembic upgrade head`."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from migrations.settings import make_engine
from migrations.testing.schema import snapshot
from proofs.helpers import alembic_cli


def client_command(url) -> tuple[list[str], dict[str, str]]:
    """The database's own command-line client, reading SQL from standard input."""
    env = dict(os.environ)
    if url.get_backend_name() == "postgresql":
        program = shutil.which("psql")
        command = [program, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", url.host or "localhost"]
        command += ["-p", str(url.port or 5432), "-U", url.username or "postgres", "-d", url.database]
        env["PGPASSWORD"] = url.password or ""
    else:
        program = shutil.which("mariadb") or shutil.which("mysql")
        command = [program, "-h", url.host or "localhost", "-P", str(url.port or 3306), "-u", url.username or "root"]
        command += [url.database]
        env["MYSQL_PWD"] = url.password or ""
    if program is None:
        reason = f"the {url.get_backend_name()} command-line client is not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return command, env


def test_offline_sql_run_by_the_databases_client_builds_the_online_schema(new_database, dialect):
    if dialect == "sqlite":
        pytest.skip("offline parity is checked with the psql and mariadb clients")
    offline, online = new_database(), new_database()
    generated = alembic_cli(offline, "upgrade", "head", "--sql")
    assert generated.returncode == 0, generated.stderr
    command, env = client_command(offline)
    applied = subprocess.run(command, input=generated.stdout, env=env, capture_output=True, text=True, timeout=120)
    assert applied.returncode == 0, applied.stderr
    migrated = alembic_cli(online, "upgrade", "head")
    assert migrated.returncode == 0, migrated.stderr
    with make_engine(offline).connect() as a, make_engine(online).connect() as b:
        assert snapshot(a) == snapshot(b)
