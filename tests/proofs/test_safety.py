"""Safety under real conditions: concurrent deploys, a held lock, a failing or killed
migration, passwords with special characters, bad input, and ``create_db.py --sql``.

Everything runs as a user would: ``python -m alembic`` and ``python create_db.py`` in
subprocesses, with the database in ``DATABASE_URL``. Tests that add a revision do it in
a copy of the project (``project_copy``), never in the project itself.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import URL, inspect, make_url, text

from migrations.build_cleanup import database_exists
from migrations.lock import migration_lock
from migrations.settings import make_engine, server_url
from migrations.testing.fixtures import project_config
from migrations.testing.schema import snapshot
from proofs.helpers import PROJECT, drop_database, environment, run_in_project, run_together

HEAD = ScriptDirectory.from_config(project_config()).get_current_head()
METADATA_MODULE = project_config().get_alembic_option("target_metadata").partition(":")[0]
TIMEOUT = 120  # seconds, for any one subprocess


FAILING_REVISION_ID = "f41ed00000000"
FAILING_REVISION = f'''"""A revision that fails halfway: a harmless table, then invalid SQL."""

import sqlalchemy as sa
from alembic import op

revision = "{FAILING_REVISION_ID}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("before_failure", sa.Column("id", sa.Integer(), primary_key=True))
    op.execute("SELECT * FROM no_such_table_xyz")


def downgrade() -> None:
    op.drop_table("before_failure")
'''

SLEEPING_REVISION_ID = "51ee90000000"
SERVER_SLEEP_SECONDS = 8  # a killed client's statement runs on, and the rerun waits for it: kept short
SLEEPING_REVISION = f'''"""A revision that creates a table, then sleeps when SLEEP_IN_MIGRATION says so.

SLEEP_IN_MIGRATION=python sleeps in this process; =server runs a sleeping statement on
the server (PostgreSQL, MariaDB). SLEEP_MARKER is a file created when the sleep begins.
"""

import os
import time

import sqlalchemy as sa
from alembic import op

revision = "{SLEEPING_REVISION_ID}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("during_kill", sa.Column("id", sa.Integer(), primary_key=True))
    where = os.environ.get("SLEEP_IN_MIGRATION")
    if not where:
        return
    open(os.environ["SLEEP_MARKER"], "w").close()
    dialect = op.get_bind().dialect.name
    if where == "server" and dialect == "postgresql":
        op.execute("SELECT pg_sleep({SERVER_SLEEP_SECONDS})")
    elif where == "server" and dialect in ("mysql", "mariadb"):
        op.execute("SELECT SLEEP({SERVER_SLEEP_SECONDS})")
    else:
        time.sleep(30)


def downgrade() -> None:
    op.drop_table("during_kill")
'''

SECOND_LOOK_REVISION_ID = "5ec0dd000000"
SECOND_LOOK_REVISION = f'''"""Reads through a second connection of the migration's engine, as older histories do
(ZenML's: Inspector.from_engine(op.get_bind().engine)); WRITE_ELSEWHERE set: writes there too."""

import os

import sqlalchemy as sa
from alembic import op

revision = "{SECOND_LOOK_REVISION_ID}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_bind().engine.connect() as other:
        seen = sa.inspect(other).get_table_names()
        if os.environ.get("WRITE_ELSEWHERE"):
            other.execute(sa.text("CREATE TABLE written_elsewhere (id INTEGER)"))
            other.commit()
    if "after_a_second_look" not in seen:
        op.create_table("after_a_second_look", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("after_a_second_look")
'''


# --- helpers ---------------------------------------------------------------------------


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def tables(url: URL) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return sorted(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def versions(url: URL) -> list[str] | None:
    """The rows of alembic_version; None when there is no such table."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def schema(url: URL) -> dict:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return snapshot(connection)
    finally:
        engine.dispose()


def add_revision(project: Path, filename: str, source: str) -> None:
    (project / "migrations" / "versions" / filename).write_text(source)


# --- 1. concurrency --------------------------------------------------------------------


def test_eight_concurrent_upgrades_apply_every_migration_exactly_once(database_url):
    """Eight replicas deploying at once: one migrates, the others wait, then find nothing to do.

    PostgreSQL and MariaDB serialize on the migration lock (migrations/lock.py); SQLite on
    the BEGIN IMMEDIATE that opens its one-transaction run (busy timeout: the lock timeout).
    """
    results = run_together(
        database_url, "-m", "alembic", "-x", "data=true", "upgrade", "head", times=8, timeout=TIMEOUT
    )
    codes = [code for code, _, _ in results]
    failures = [f"exit {code}:\n{out}{err}" for code, out, err in results if code != 0]
    assert codes == [0] * 8, "\n".join(failures)
    assert versions(database_url) == [HEAD]
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            # the first revision's data step inserts 3 rows: 6 or more means it ran twice
            assert connection.execute(text("SELECT count(*) FROM customer")).scalar_one() == 3
    finally:
        engine.dispose()


# --- 2. lock timeout -------------------------------------------------------------------


@contextmanager
def holding_the_migration_lock(url: URL) -> Iterator[None]:
    """Hold the migration lock of url's database as another run would: on SQLite, its write lock."""
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(url.database, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            yield
        finally:
            holder.close()  # and with it the lock
        return
    engine = make_engine(url)
    try:
        with engine.connect() as connection, migration_lock(connection, timeout=5):
            yield
    finally:
        engine.dispose()


def opened(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has the file open (Linux): a SQLite run that got this far
    next begins its transaction, and so waits for the lock."""
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            if Path(os.readlink(fd)) == path.resolve():
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def start_waiting(url: URL, args: list[str], log: Path, **env: str) -> subprocess.Popen:
    """Start ``python *args`` on url; on SQLite, return once it has the database open."""
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, *args], cwd=PROJECT, env=environment(url, **env), stdout=sink, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + TIMEOUT
    while url.get_backend_name() == "sqlite" and not opened(process.pid, Path(url.database)):
        if process.poll() is not None:
            break  # it gave up already, or failed: the caller's assertions say which
        assert time.monotonic() < deadline, f"it never opened the database:\n{log.read_text()}"
        time.sleep(0.02)
    return process


LOCKED_COMMANDS = [
    pytest.param(["-m", "alembic", "upgrade", "head"], id="upgrade"),
    pytest.param(["create_db.py"], id="create_db"),
]


@pytest.mark.parametrize("args", LOCKED_COMMANDS)
def test_a_held_migration_lock_makes_a_run_give_up_cleanly_after_the_timeout(database_url, dialect, args, tmp_path):
    """migration_lock_timeout shorter than pysqlite's own 5 s is honoured on SQLite too."""
    log = tmp_path / "run.log"
    with holding_the_migration_lock(database_url):
        process = start_waiting(database_url, args, log, MIGRATION_LOCK_TIMEOUT="1")
        started = time.monotonic()
        process.wait(timeout=TIMEOUT)
        waited = time.monotonic() - started
    out = log.read_text()
    assert process.returncode != 0
    said = [line for line in out.splitlines() if "waiting for the migration lock" in line]
    assert len(said) == 1 and "gave up after 1 s waiting for the migration lock on" in said[0], out
    assert "Traceback" not in out
    assert "customer" not in tables(database_url)
    if dialect == "sqlite":  # from opening the database to giving up: 1 s, not the driver's 5 s
        assert waited < 4.5, f"waited {waited:.1f} s"


@pytest.mark.parametrize("args", LOCKED_COMMANDS)
def test_sqlite_waits_for_the_lock_as_long_as_the_timeout_not_the_drivers_5_s(database_url, dialect, args, tmp_path):
    if dialect != "sqlite":
        pytest.skip("the servers' lock wait is lock.py's own: the test above")
    log = tmp_path / "run.log"
    with holding_the_migration_lock(database_url):
        process = start_waiting(database_url, args, log, MIGRATION_LOCK_TIMEOUT="60")
        time.sleep(8)  # longer than pysqlite's 5 s
        assert process.poll() is None, f"it did not wait while the lock was held:\n{log.read_text()}"
    process.wait(timeout=TIMEOUT)
    assert process.returncode == 0, log.read_text()
    assert versions(database_url) == [HEAD]


# --- 3. a failing revision -------------------------------------------------------------


def test_a_failing_revision_leaves_a_true_version_and_is_named(project_copy, database_url, dialect):
    add_revision(project_copy, "failing_revision.py", FAILING_REVISION)  # the id is not in the file name
    result = run_in_project(database_url, "-m", "alembic", "upgrade", "head", cwd=project_copy)
    assert result.returncode != 0
    # env.py names the revision (Alembic alone shows a traceback that names none).
    assert f"FAILED: revision {FAILING_REVISION_ID} (failing_revision.py) failed:" in result.stdout, output(result)
    assert "no_such_table_xyz" in result.stdout
    assert "Traceback" not in output(result)
    if dialect in ("mysql", "mariadb"):
        # One transaction per migration, and no transactional DDL: every migration before the
        # failing one is committed with its version row. The failing revision's CREATE TABLE
        # committed implicitly too: MariaDB cannot roll DDL back, the version row cannot say so.
        assert versions(database_url) == [HEAD]
        assert "customer" in tables(database_url)
        assert "before_failure" in tables(database_url)
    else:
        # PostgreSQL, and SQLite through make_engine: the whole run is one transaction, so
        # nothing of it is left; not even alembic_version.
        assert tables(database_url) == []
        assert versions(database_url) is None


def test_a_revision_that_reads_through_a_second_connection_upgrades(project_copy, database_url, dialect):
    """SQLite's write lock is held by the migration's own connection (BEGIN IMMEDIATE): a
    second connection the revision opens on the same engine only reads, and gets a
    deferred transaction. It used to wait for that lock, its own thread's, and fail after
    5 s ("gave up ... waiting for the migration lock")."""
    add_revision(project_copy, "second_look.py", SECOND_LOOK_REVISION)
    result = run_in_project(database_url, "-m", "alembic", "upgrade", "head", cwd=project_copy)
    assert result.returncode == 0, output(result)
    assert versions(database_url) == [SECOND_LOOK_REVISION_ID]
    assert "after_a_second_look" in tables(database_url)


def test_a_write_through_a_second_connection_on_sqlite_fails_at_once_and_says_why(project_copy, database_url, dialect):
    if dialect != "sqlite":
        pytest.skip("a server lets a second connection write (outside the migration's transaction)")
    add_revision(project_copy, "second_look.py", SECOND_LOOK_REVISION)
    started = time.monotonic()
    upgrade = ("-m", "alembic", "upgrade", "head")
    result = run_in_project(database_url, *upgrade, cwd=project_copy, WRITE_ELSEWHERE="1", MIGRATION_LOCK_TIMEOUT="60")
    waited = time.monotonic() - started
    assert result.returncode != 0
    assert f"FAILED: revision {SECOND_LOOK_REVISION_ID} (second_look.py) failed:" in result.stdout, output(result)
    assert "a second connection of the migration's engine cannot write" in result.stdout, output(result)
    assert "Traceback" not in output(result)
    assert tables(database_url) == []  # the run is one transaction: nothing of it is left
    assert waited < 30, f"it waited {waited:.0f} s for a lock its own run holds"


# --- 4. SIGKILL mid-upgrade ------------------------------------------------------------


def sleep_is_running(url: URL, dialect: str) -> bool:
    """The sleeping revision's server-side sleep is executing in url's database."""
    if dialect == "postgresql":
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND query LIKE 'SELECT pg_sleep%'"
    else:
        query = "SELECT count(*) FROM information_schema.processlist WHERE db = :db AND info LIKE 'SELECT SLEEP%'"
    engine = make_engine(server_url(url))
    try:
        with engine.connect() as connection:
            return connection.execute(text(query), {"db": url.database}).scalar_one() > 0
    finally:
        engine.dispose()


@pytest.mark.parametrize("where", ["python", "server"])
def test_sigkill_mid_upgrade_then_rerun(project_copy, new_database, dialect, tmp_path, where):
    """Kill -9 a deploy inside a migration (in Python, or in a long server-side statement), rerun."""
    if where == "server" and dialect == "sqlite":
        pytest.skip("SQLite runs in the killed process: no statement outlives it")
    database_url = new_database()
    add_revision(project_copy, "sleeping_revision.py", SLEEPING_REVISION)
    marker, log = tmp_path / "sleeping", tmp_path / "killed.log"
    env = environment(database_url, SLEEP_IN_MIGRATION=where, SLEEP_MARKER=str(marker))
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=project_copy,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not (marker.exists() and (where == "python" or sleep_is_running(database_url, dialect))):
            assert process.poll() is None, f"exited {process.returncode} before the sleep:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the sleep never started:\n{log.read_text()}"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=TIMEOUT)
    assert f"Running upgrade {HEAD} -> {SLEEPING_REVISION_ID}" in log.read_text()

    # What the kill left: a version row that is true.
    left = schema(database_url)
    if dialect in ("mysql", "mariadb"):
        # Every migration before the killed one committed with its version row: the schema is
        # exactly that of HEAD, plus the killed revision's table, committed implicitly by its
        # CREATE TABLE (MariaDB cannot roll DDL back) while the version row stays at HEAD.
        assert versions(database_url) == [HEAD]
        reference = new_database()
        config = project_config()
        config.attributes["database_url"] = reference
        command.upgrade(config, HEAD)
        assert left["tables"].pop("during_kill", None) is not None
        assert left == schema(reference)
    else:
        # PostgreSQL and SQLite: the killed run was one transaction; nothing of it is left.
        # (SQLite rolls the hot journal back when the file is next opened.)
        assert versions(database_url) is None
        assert left["tables"] == {} and left["views"] == []

    # The rerun, without the sleep and with no manual step in between.
    rerun = run_in_project(database_url, "-m", "alembic", "upgrade", "head", cwd=project_copy)
    if dialect in ("mysql", "mariadb"):
        # The killed revision's table is in the way: the rerun fails on it and the version row
        # stays true. The manual step MariaDB needs: drop what the killed revision created.
        assert rerun.returncode != 0
        assert "during_kill" in output(rerun) and "already exists" in output(rerun)
        assert versions(database_url) == [HEAD]
        engine = make_engine(database_url)
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql("DROP TABLE during_kill")
        finally:
            engine.dispose()
        rerun = run_in_project(database_url, "-m", "alembic", "upgrade", "head", cwd=project_copy)
    # PostgreSQL: the killed client's session is gone with its transaction and its advisory
    # lock; but a session busy in a statement (where == "server") only notices the dead client
    # when the statement ends, so the rerun waits on the lock until then, then goes on.
    assert rerun.returncode == 0, output(rerun)
    assert "waiting for the migration lock" not in output(rerun)
    assert versions(database_url) == [SLEEPING_REVISION_ID]
    assert "during_kill" in tables(database_url)


# --- 5. no secrets in output or files --------------------------------------------------

PASSWORD = "p%@/ss word"


@pytest.fixture
def role_with_password(server: URL, dialect: str) -> Iterator[tuple[str, list[str]]]:
    """A login role whose password needs quoting, and two fresh databases it owns."""
    if dialect == "sqlite":
        pytest.skip("SQLite has no users or passwords")
    role = f"test_role_{uuid.uuid4().hex[:12]}"
    databases = [f"test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    engine = make_engine(server_url(server)).execution_options(isolation_level="AUTOCOMMIT")
    if dialect == "postgresql":  # trust authentication on 127.0.0.1: the password is not checked
        setup = [f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'"]
        setup += [f"CREATE DATABASE {name} OWNER {role}" for name in databases]
        teardown = [f"DROP DATABASE IF EXISTS {name} WITH (FORCE)" for name in databases]
        teardown += [f"DROP ROLE IF EXISTS {role}"]
    else:  # MariaDB checks it: a wrongly decoded password would be refused
        setup = [f"CREATE USER '{role}'@'%' IDENTIFIED BY '{PASSWORD}'"]
        setup += [f"CREATE DATABASE {name}" for name in databases]
        setup += [f"GRANT ALL PRIVILEGES ON {name}.* TO '{role}'@'%'" for name in databases]
        teardown = [f"DROP DATABASE IF EXISTS {name}" for name in databases] + [f"DROP USER IF EXISTS '{role}'@'%'"]

    def execute(statements: list[str]) -> None:
        with engine.connect() as connection:
            cursor = connection.connection.driver_connection.cursor()
            for statement in statements:
                cursor.execute(statement)  # on the driver, without parameters: the % is not a placeholder

    try:
        execute(setup)
        yield role, databases
    finally:
        execute(teardown)
        engine.dispose()


def test_a_password_with_special_characters_never_leaks(project_copy, server, role_with_password):
    role, (built, migrated) = role_with_password
    # SQLAlchemy decodes the password with unquote, not unquote_plus: quote_plus's "+" for the
    # space would stay a "+". PostgreSQL does not check the password here, so it gets the
    # quote_plus form (what settings.py's error message advises); MariaDB checks it, so it gets
    # the form that decodes back to the password.
    encoded = quote_plus(PASSWORD) if server.get_backend_name() == "postgresql" else quote(PASSWORD, safe="")
    where = f"{server.host}:{server.port}" if server.port else server.host
    base = f"{server.drivername}://{role}:{encoded}@{where}"
    # the password, its encodings, and what SQLAlchemy decodes from the URL ("p%@/ss+word")
    secrets = {PASSWORD, quote_plus(PASSWORD), quote(PASSWORD, safe=""), make_url(base).password}

    results = {
        "create_db": run_in_project(f"{base}/{built}", "create_db.py", cwd=project_copy),
        "upgrade": run_in_project(f"{base}/{migrated}", "-m", "alembic", "upgrade", "head", cwd=project_copy),
        "current": run_in_project(f"{base}/{migrated}", "-m", "alembic", "current", cwd=project_copy),
    }
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {output(result)}"
    assert f"{role}:***@" in results["create_db"].stdout
    assert f"stamped at head {HEAD}" in results["create_db"].stdout
    assert HEAD in results["current"].stdout

    missing = f"{base}/no_such_database_{uuid.uuid4().hex[:8]}"
    failing = {
        "upgrade on a missing database": run_in_project(missing, "-m", "alembic", "upgrade", "head", cwd=project_copy),
        "create_db on a missing database": run_in_project(
            missing, "create_db.py", cwd=project_copy
        ),  # the role may not create it
    }
    for name, result in failing.items():
        assert result.returncode != 0, f"{name}: {output(result)}"
    for name, result in {**results, **failing}.items():
        for secret in secrets:
            assert secret not in output(result), f"{name} printed the password ({secret!r}):\n{output(result)}"

    for path in project_copy.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in content, f"{path} holds the password ({secret!r})"


# --- 6. bad input ----------------------------------------------------------------------


def files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if "__pycache__" not in path.parts)


def assert_untouched(url: URL, dialect: str) -> None:
    if dialect == "sqlite":
        assert not Path(url.database).exists()  # never even opened
    else:
        assert tables(url) == []


# Alembic prints each of these as "FAILED: <message>" on stdout. Whether the same message is
# also logged on stderr ("ERROR [alembic.util.messaging] <message>") is up to the logging
# configuration in alembic.ini, so the number of lines is not asserted here.
BAD_INPUTS = [
    pytest.param(["-x", "data=maybe"], None, None, "-x data='maybe' is not a yes/no value", id="x-data-maybe"),
    pytest.param([], "not a url", None, "DATABASE_URL is not a valid SQLAlchemy URL", id="database-url-not-a-url"),
    pytest.param([], "postgresql+nosuchdriver://x/y", None, "nosuchdriver", id="database-url-unknown-driver"),
    pytest.param(
        [],
        "mssql+pymssql://user:s3cret@127.0.0.1/x",  # a dialect SQLAlchemy has, a driver this project does not
        None,
        "its driver is not installed (No module named 'pymssql')",
        id="database-url-driver-not-installed",
    ),
    pytest.param([], None, "nosuch.module:metadata", "cannot import 'nosuch.module'", id="metadata-module-missing"),
    pytest.param(
        [], None, f"{METADATA_MODULE}:no_such_metadata", "has no 'no_such_metadata'", id="metadata-attribute-missing"
    ),
]


@pytest.mark.parametrize(("options", "bad_url", "bad_metadata", "message"), BAD_INPUTS)
def test_bad_input_to_alembic_is_a_clear_error_and_touches_nothing(
    project_copy, database_url, dialect, options, bad_url, bad_metadata, message
):
    if bad_metadata is not None:  # in alembic.ini, or in pyproject.toml's [tool.alembic] (a TOML string)
        rewritten = 0
        for path, value in (
            (project_copy / "alembic.ini", bad_metadata),
            (project_copy / "pyproject.toml", f'"{bad_metadata}"'),
        ):
            text_, count = re.subn(r"(?m)^target_metadata = .*$", f"target_metadata = {value}", path.read_text())
            path.write_text(text_)
            rewritten += count
        assert rewritten == 1
    if bad_url and bad_url.startswith("mssql+pymssql") and importlib.util.find_spec("pymssql"):
        pytest.skip("pymssql is installed here: the URL's driver would be found")
    files_before = files(project_copy)
    result = run_in_project(bad_url or database_url, "-m", "alembic", *options, "upgrade", "head", cwd=project_copy)
    assert result.returncode != 0
    assert "Traceback" not in output(result) and "s3cret" not in output(result), output(result)
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1 and message in failed[0], output(result)
    assert_untouched(database_url, dialect)
    assert files(project_copy) == files_before  # nothing else was used instead, e.g. alembic.ini's SQLite file


def test_create_db_with_a_garbage_url_is_one_line_and_touches_nothing(project_copy, database_url, dialect):
    files_before = files(project_copy)
    result = run_in_project(database_url, "create_db.py", "--url", "garbage", cwd=project_copy)
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0, result.stderr  # one line
    assert "Traceback" not in result.stderr
    assert "not a valid SQLAlchemy URL" in result.stderr
    assert "garbage" not in result.stderr  # the string is never echoed: it could have been a password
    assert_untouched(database_url, dialect)  # DATABASE_URL was not used instead
    assert files(project_copy) == files_before


# --- 7. create_db --sql ----------------------------------------------------------------


def database_is_there(url: URL) -> bool:
    if url.get_backend_name() == "sqlite":
        return Path(url.database).exists()
    engine = make_engine(server_url(url))
    try:
        with engine.connect() as connection:
            return database_exists(connection, url.database)
    finally:
        engine.dispose()


def test_create_db_sql_does_not_create_a_missing_database(server, dialect, tmp_path):
    if dialect == "sqlite":
        url = server.set(database=str(tmp_path / "not_yet.sqlite"))
    else:
        url = server.set(database=f"test_{uuid.uuid4().hex[:12]}")
    try:
        result = run_in_project(url, "create_db.py", "--sql", cwd=PROJECT)
        assert result.returncode == 0, output(result)
        assert "CREATE TABLE customer" in result.stdout
        assert f"INSERT INTO alembic_version (version_num) VALUES ('{HEAD}')" in result.stdout
        assert not database_is_there(url)  # SQLite: no file; a server: no database
    finally:
        if dialect != "sqlite":
            drop_database(url)  # had it been created


def test_a_percent_in_the_ini_url_is_one_line_without_the_password(project_copy, dialect):
    ini = project_copy / "alembic.ini"
    lines = ini.read_text().splitlines()
    url_line = next(index for index, line in enumerate(lines) if line.startswith("sqlalchemy.url"))
    lines[url_line] = "sqlalchemy.url = postgresql+psycopg://app:s3cr%40t@127.0.0.1:5432/nodb"
    ini.write_text("\n".join(lines) + "\n")
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    for args in (["-m", "alembic", "current"], ["create_db.py"]):
        result = subprocess.run(
            [sys.executable, *args], cwd=project_copy, env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
        assert result.returncode != 0
        assert "write each % as %% in alembic.ini" in output(result)
        assert "Traceback" not in output(result) and "s3cr" not in output(result)
