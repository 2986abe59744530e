"""Wired recipes that meet, in pairs that no other proof covers: a second environment
(``alembic --name``, migrations/environments.py) on an async URL, with ``--sql``, with the
migration lock and with the at-head check; and an irreversible revision with ``--sql`` and on
an async URL.

The second environment is ``[audit]``, added to a copy of the project as the baked README
says (proofs/test_environments.py), with two revisions: au1 (``audit_event``) and au2
(``audit_note``; it can hold its run open until the test lets go). Everything runs as a
user would: ``python -m alembic``, ``python create_db.py``, ``python -m migrations.cli``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import URL, inspect, text

from migrations.at_head import at_head_problem
from migrations.settings import make_engine
from proofs.helpers import alembic_cli, environment, run_in_project
from proofs.test_environments import add_audit_environment
from proofs.test_safety import opened
from proofs.test_safety import tables as table_names
from proofs.test_stairway import HEAD, revision_source
from proofs.test_walk import TABLE, marked_irreversible, with_module_code

TIMEOUT = 120  # seconds, for any one subprocess
VERSION_TABLES = ("alembic_version", "alembic_version_audit")
# The main environment's URL while a command runs for [audit]: never to be used by it.
NOWHERE = "sqlite:////nonexistent-folder/the-main-environment-is-not-used-here.db"
ASYNC_DRIVERS = {"postgresql": "asyncpg", "sqlite": "aiosqlite", "mysql": "aiomysql", "mariadb": "aiomysql"}
HOLD = '''import os
import time
from pathlib import Path


def hold() -> None:
    """With AUDIT_HOLD set: say the run is here (its lock held), and wait until let go."""
    where = os.environ.get("AUDIT_HOLD")
    if not where:
        return
    Path(where + ".held").touch()
    deadline = time.monotonic() + 60  # a test that failed before letting go
    while not Path(where + ".release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
'''


def add_environment(project: Path) -> None:
    """The [audit] environment (au1, from test_environments) and its second revision, au2."""
    add_audit_environment(project)
    note = TABLE.format("audit_note") + "\nhold()"
    source = with_module_code(revision_source("au2", "au1", note, 'op.drop_table("audit_note")'), HOLD)
    (project / "audit_migrations" / "versions" / "audit_2.py").write_text(source)


def rendered(url: URL | str) -> str:
    return url.render_as_string(hide_password=False) if isinstance(url, URL) else url


def audit(url: URL, *args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """``python *args`` for the [audit] environment on ``url`` (its own variable), with the
    main environment's DATABASE_URL pointing nowhere."""
    return run_in_project(NOWHERE, *args, cwd=cwd, AUDIT_DATABASE_URL=rendered(url), **extra)


def audit_alembic(url: URL, *args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return audit(url, "-m", "alembic", "--name", "audit", *args, cwd=cwd, **extra)


def start(database_url: URL | str, args: list[str], cwd: Path, log: Path, **extra: str) -> subprocess.Popen:
    with log.open("w") as sink:
        return subprocess.Popen(
            [sys.executable, *args], cwd=cwd, env=environment(database_url, **extra), stdout=sink, stderr=sink
        )


def versions(url: URL) -> dict[str, list[str]]:
    """Each version table in the database, with its rows."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            present = [name for name in VERSION_TABLES if inspect(connection).has_table(name)]
            return {
                name: sorted(connection.execute(text(f"SELECT version_num FROM {name}")).scalars()) for name in present
            }
    finally:
        engine.dispose()


def tables(url: URL) -> set[str]:
    return set(table_names(url))


# --- 1. several environments × an async URL --------------------------------------------


@pytest.fixture
def async_url(database_url: URL, dialect: str) -> URL:
    """This test's database through the async driver an application of its database uses."""
    driver = ASYNC_DRIVERS[dialect]
    for package in ("greenlet", driver):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed (pip install {package})")
    return database_url.set(drivername=f"{database_url.get_backend_name()}+{driver}")


def test_a_second_environment_on_an_async_url_migrates_renders_and_builds_with_its_own_version_table(
    project_copy, database_url, async_url, alembic_config, new_database, dialect, tmp_path
):
    add_environment(project_copy)
    command.upgrade(alembic_config, "head")  # the main history, in the same database
    extra = {}
    if dialect == "postgresql":  # asyncpg alone: psycopg, the sync driver, cannot be imported
        blocker = tmp_path / "blocked" / "psycopg"
        blocker.mkdir(parents=True)
        (blocker / "__init__.py").write_text('raise ImportError("psycopg is not installed here")\n')
        extra["PYTHONPATH"] = os.pathsep.join(filter(None, [str(blocker.parent), os.environ.get("PYTHONPATH")]))

    up = audit_alembic(async_url, "upgrade", "head", cwd=project_copy, **extra)
    assert up.returncode == 0, up.stdout + up.stderr
    assert versions(database_url) == {"alembic_version": [HEAD], "alembic_version_audit": ["au2"]}
    assert {"customer", "audit_event", "audit_note"} <= tables(database_url)

    down = audit_alembic(async_url, "downgrade", "-1", cwd=project_copy, **extra)
    assert down.returncode == 0, down.stdout + down.stderr
    assert versions(database_url) == {"alembic_version": [HEAD], "alembic_version_audit": ["au1"]}
    assert "audit_note" not in tables(database_url)

    sql = audit_alembic(async_url, "upgrade", "head", "--sql", cwd=project_copy, **extra)
    assert sql.returncode == 0, sql.stdout + sql.stderr
    assert "CREATE TABLE audit_note" in sql.stdout
    assert re.search(r"\balembic_version\b", sql.stdout) is None, sql.stdout  # only its own
    assert versions(database_url) == {"alembic_version": [HEAD], "alembic_version_audit": ["au1"]}  # only printed

    built = new_database()
    build = audit(
        built.set(drivername=async_url.drivername), "create_db.py", "--name", "audit", cwd=project_copy, **extra
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert build.stdout.startswith(f"Built {async_url.get_backend_name()}+{ASYNC_DRIVERS[dialect]}://"), build.stdout
    assert tables(built) == {"audit_event", "alembic_version_audit"}
    assert versions(built) == {"alembic_version_audit": ["au2"]}


# --- 2. several environments × --sql ---------------------------------------------------


def test_a_second_environments_sql_names_its_own_version_table(project_copy, database_url):
    add_environment(project_copy)
    upgrade = audit_alembic(database_url, "upgrade", "head", "--sql", cwd=project_copy)
    build = audit(database_url, "create_db.py", "--name", "audit", "--sql", cwd=project_copy)
    for result, stamp in (
        (upgrade, "UPDATE alembic_version_audit SET version_num='au2'"),
        (build, "INSERT INTO alembic_version_audit (version_num) VALUES ('au2')"),
    ):
        assert result.returncode == 0, result.stdout + result.stderr
        assert "CREATE TABLE alembic_version_audit" in result.stdout and stamp in result.stdout, result.stdout
        assert re.search(r"\balembic_version\b", result.stdout) is None, result.stdout  # only its own
    assert "CREATE TABLE customer" not in upgrade.stdout + build.stdout  # the main history's
    assert tables(database_url) == set()  # printed, not run


# --- 3. several environments × the migration lock --------------------------------------


def test_a_second_environments_runs_wait_for_each_other_and_not_for_the_main_ones(
    project_copy, database_url, dialect, tmp_path
):
    """The lock is keyed on the database and the version table (migrations/lock.py): two runs
    of [audit] wait for each other; a run of [alembic] on the same server database does not
    wait for [audit]'s. SQLite has one write lock per file: there it waits, then goes on."""
    add_environment(project_copy)
    hold = tmp_path / "hold"
    audit_upgrade = ["-m", "alembic", "--name", "audit", "upgrade", "head"]
    first = start(
        NOWHERE, audit_upgrade, project_copy, tmp_path / "first.log",
        AUDIT_DATABASE_URL=rendered(database_url), AUDIT_HOLD=str(hold),
    )  # fmt: skip
    main = None
    try:
        deadline = time.monotonic() + TIMEOUT
        while not Path(f"{hold}.held").exists():  # au2 runs: the first run holds the lock
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            time.sleep(0.05)

        second = audit_alembic(database_url, "upgrade", "head", cwd=project_copy, MIGRATION_LOCK_TIMEOUT="1")
        said = [line for line in second.stdout.splitlines() if "waiting for the migration lock" in line]
        assert second.returncode != 0, second.stdout + second.stderr
        assert len(said) == 1 and said[0].startswith("FAILED: gave up after 1 s waiting for the migration lock"), (
            second.stdout + second.stderr
        )

        if dialect == "sqlite":  # the main run waits for the file's write lock, not forever
            log = tmp_path / "main.log"
            main = start(database_url, ["-m", "alembic", "upgrade", "head"], project_copy, log)
            while not opened(main.pid, Path(database_url.database)):
                assert main.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.02)
            time.sleep(1)
            assert main.poll() is None, f"it did not wait for [audit]'s write lock:\n{log.read_text()}"
        else:  # the main environment's lock is another: it runs at once
            ran = run_in_project(
                database_url, "-m", "alembic", "upgrade", "head", cwd=project_copy, MIGRATION_LOCK_TIMEOUT="1"
            )
            assert ran.returncode == 0, ran.stdout + ran.stderr
    finally:
        Path(f"{hold}.release").touch()
        first.wait(timeout=TIMEOUT)
        if main is not None:
            main.wait(timeout=TIMEOUT)
    assert first.returncode == 0, (tmp_path / "first.log").read_text()
    if main is not None:
        assert main.returncode == 0, (tmp_path / "main.log").read_text()
    assert versions(database_url) == {"alembic_version": [HEAD], "alembic_version_audit": ["au2"]}


# --- 4. irreversible revisions × --sql, × async ----------------------------------------


def test_an_offline_downgrade_past_an_irreversible_revision_is_refused_in_one_line(project_copy, database_url):
    versions_folder = project_copy / "migrations" / "versions"
    source = marked_irreversible(revision_source("ir1", HEAD, TABLE.format("kept")))
    versions_folder.joinpath("irreversible_1.py").write_text(source)
    later = revision_source("ir2", "ir1", TABLE.format("later"), 'op.drop_table("later")')
    versions_folder.joinpath("irreversible_2.py").write_text(later)
    refused = alembic_cli(database_url, "downgrade", f"ir2:{HEAD}", "--sql", cwd=project_copy)
    assert refused.returncode != 0
    assert refused.stdout.strip() == (  # the line an online downgrade says (test_walk.py), and no SQL
        "FAILED: revision ir1 (irreversible_1.py) is irreversible: drops what cannot be brought back. "
        "Nothing was downgraded; downgrade to it or a later revision instead."
    ), refused.stdout
    assert "Traceback" not in refused.stderr, refused.stderr
    # × async: online, through the async driver, the same line, and nothing downgraded
    backend = database_url.get_backend_name()
    driver = {"postgresql": "asyncpg", "sqlite": "aiosqlite", "mysql": "aiomysql", "mariadb": "aiomysql"}[backend]
    if importlib.util.find_spec(driver) is None or importlib.util.find_spec("greenlet") is None:
        return
    async_url = database_url.set(drivername=f"{backend}+{driver}")
    assert alembic_cli(async_url, "upgrade", "ir2", cwd=project_copy).returncode == 0
    online = alembic_cli(async_url, "downgrade", HEAD, cwd=project_copy)
    assert online.returncode != 0 and online.stdout.strip() == refused.stdout.strip(), online.stdout + online.stderr
    with make_engine(database_url).connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "ir2"


# --- 5. several environments × the at-head check ---------------------------------------


def test_at_head_for_a_second_environment_reads_its_own_version_table(project_copy, database_url):
    add_environment(project_copy)
    assert audit_alembic(database_url, "upgrade", "au1", cwd=project_copy).returncode == 0
    at_head = ["-m", "migrations.cli", "--name", "audit", "at_head"]
    behind = audit(database_url, *at_head, cwd=project_copy)
    assert behind.returncode != 0
    where = database_url.render_as_string(hide_password=True)
    said = behind.stdout.strip().splitlines()  # one line; what it says to run: the test below
    assert len(said) == 1 and said[0].startswith(f"FAILED: {where} is at au1, behind this code's heads (au2): "), (
        behind.stdout + behind.stderr
    )
    assert "Traceback" not in behind.stderr, behind.stderr
    assert audit_alembic(database_url, "upgrade", "head", cwd=project_copy).returncode == 0
    done = audit(database_url, *at_head, cwd=project_copy)  # the main history: not there at all
    assert done.returncode == 0 and done.stdout.strip() == "The database is at head.", done.stdout + done.stderr


def test_at_head_for_a_second_environment_says_which_upgrade_to_run(project_copy, database_url):
    add_environment(project_copy)
    config = Config(project_copy / "alembic.ini", ini_section="audit")
    config.attributes["database_url"] = database_url
    problem = at_head_problem(config)  # an empty database: behind
    assert problem is not None and "`alembic --name audit upgrade head`" in problem, problem
