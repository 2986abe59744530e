"""create_db.py destroys only what its own run made: it never drops a database another run
built while it waited for the migration lock (or gave up waiting), never drops a user's
object, keeps a database it created when someone else is using it, and a build killed
midway is finished by running create_db.py again.

Every test counts what was there before (tables, views, routines, triggers with their
definitions, and every row) and after. The races are made deterministic: create_db()
runs in a thread that stops just after it connected to the database it created
(SQLAlchemy's ``engine_connect`` event), while the test, as the other process, takes the
migration lock, builds and writes rows.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import URL, Column, Connection, Engine, Integer, MetaData, Table, event, inspect, text

from create_db import create_db
from migrations.build_cleanup import database_exists
from migrations.lock import migration_lock
from migrations.replaceable import View
from migrations.settings import make_engine, server_url, target_metadata
from migrations.testing.fixtures import project_config
from migrations.testing.schema import snapshot
from proofs.helpers import drop_database, environment, run_in_project, run_together

HEAD = ScriptDirectory.from_config(project_config()).get_current_head()
TIMEOUT = 120  # seconds, for any one wait

# A build that fails halfway: a table, then a view that is not SQL (target_metadata of a config).
BROKEN = MetaData()
Table("made_before_failing", BROKEN, Column("id", Integer, primary_key=True))
View("broken", BROKEN, "SELEC nope FROM made_before_failing")


# --- helpers ---------------------------------------------------------------------------


def picture(url: URL) -> dict | None:
    """Everything in the database: the schema with every object's definition, and every
    table's rows (the version table's included); None when there is no such database."""
    if url.get_backend_name() != "sqlite" and not server_has(url):
        return None
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            shot = snapshot(connection)
            quote = connection.dialect.identifier_preparer.quote
            shot["rows"] = {
                name: sorted(tuple(row) for row in connection.execute(text(f"SELECT * FROM {quote(name)}")))
                for name in inspect(connection).get_table_names()
            }
            return shot
    finally:
        engine.dispose()


def server_has(url: URL) -> bool:
    engine = make_engine(server_url(url))
    try:
        with engine.connect() as connection:
            return database_exists(connection, url.database)
    finally:
        engine.dispose()


def config_for(url: URL, metadata: str | None = None, lock_timeout: float | None = None) -> Config:
    config = project_config()
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False  # leave pytest's logging alone
    if metadata:
        config.set_main_option("target_metadata", metadata)
    if lock_timeout is not None:
        config.set_main_option("migration_lock_timeout", str(lock_timeout))
    return config


class CreateDbInAThread:
    """create_db() in a thread of its own that stops right after it connected to the
    database it created, until ``go_on()``: the moment another process could get there first."""

    def __init__(self, config: Config, database: str) -> None:
        self.config, self.database = config, database
        self.arrived, self.released = threading.Event(), threading.Event()
        self.result: str | None = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self.run, name=f"create_db {database}")

    def pause(self, connection: Connection) -> None:
        here = connection.engine.url.database == self.database and threading.current_thread() is self.thread
        if here and not self.arrived.is_set():
            self.arrived.set()
            self.released.wait(TIMEOUT)

    def run(self) -> None:
        try:
            self.result = create_db(self.config)
        except Exception as error:
            self.error = error

    def go_on(self) -> None:
        self.released.set()

    def join(self) -> None:
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "create_db() did not finish"


@contextmanager
def create_db_in_a_thread(config: Config, database: str) -> Iterator[CreateDbInAThread]:
    """Start it; yield once it has created the database and connected to it."""
    run = CreateDbInAThread(config, database)
    event.listen(Engine, "engine_connect", run.pause)
    try:
        run.thread.start()
        assert run.arrived.wait(TIMEOUT), f"create_db() never connected: {run.error!r}"
        yield run
    finally:
        run.go_on()
        run.thread.join(TIMEOUT)
        event.remove(Engine, "engine_connect", run.pause)


def build_and_write(connection: Connection, url: URL) -> None:
    """What the other process does under the lock: upgrade to head (its data step writes
    three customers), then the application writes a row of its own."""
    config = config_for(url)
    config.attributes["connection"] = connection
    config.attributes["data"] = True
    command.upgrade(config, "head")
    with connection.begin():
        connection.execute(text("INSERT INTO customer (name, order_count) VALUES ('written by the app', 1)"))


@pytest.fixture
def missing_database(server: URL, dialect: str) -> Iterator[URL]:
    """A database name not taken yet on the server; dropped after the test if it is there."""
    if dialect == "sqlite":
        pytest.skip("create_db.py creates server databases only")
    url = server.set(database=f"test_{uuid.uuid4().hex[:12]}")
    yield url
    drop_database(url)


# --- 1. a database it created, which another run built -----------------------------------


def test_create_db_never_drops_a_database_another_run_built_while_it_waited_for_the_lock(missing_database):
    url = missing_database
    engine = make_engine(url)
    try:
        with create_db_in_a_thread(config_for(url), url.database) as run, engine.connect() as other:
            with migration_lock(other, timeout=30):  # the other run got the lock first
                build_and_write(other, url)
                before = picture(url)
                run.go_on()
                time.sleep(1)  # create_db() now waits for the lock
            run.join()
            assert other.execute(text("SELECT count(*) FROM customer")).scalar_one() == 4  # its session lives on
    finally:
        engine.dispose()
    assert picture(url) == before and len(before["rows"]["customer"]) == 4
    assert run.result is None and "is not empty" in str(run.error), run.error
    assert "run `alembic upgrade head` instead" in str(run.error)


def test_create_db_never_drops_a_database_it_created_when_it_gives_up_waiting_for_the_lock(missing_database):
    url = missing_database
    engine = make_engine(url)
    try:
        with create_db_in_a_thread(config_for(url, lock_timeout=1), url.database) as run, engine.connect() as other:
            with migration_lock(other, timeout=30):
                build_and_write(other, url)
                before = picture(url)
                run.go_on()
                run.join()  # gave up while the lock is still held
                assert other.execute(text("SELECT count(*) FROM customer")).scalar_one() == 4
    finally:
        engine.dispose()
    assert picture(url) == before and len(before["rows"]["customer"]) == 4
    assert "gave up after 1 s waiting for the migration lock" in str(run.error), run.error


def test_four_create_db_at_once_on_a_missing_database_build_it_once_and_keep_it(missing_database):
    """Not deterministic (which one creates the database, which one builds): the outcome is."""
    outputs = run_together(missing_database, "create_db.py", times=4, timeout=TIMEOUT)
    shown = "\n".join(f"exit {code}: {out}{err}" for code, out, err in outputs)
    after = picture(missing_database)
    assert after is not None and after["rows"]["alembic_version"] == [(HEAD,)], shown
    assert sorted(code for code, _, _ in outputs) == [0, 1, 1, 1], shown
    for code, _, err in outputs:
        if code:
            assert err.count("\n") == 1 and "Traceback" not in err, shown


def test_a_failed_build_keeps_the_database_it_created_while_another_session_uses_it(missing_database):
    url = missing_database
    config = config_for(url, metadata=f"{__name__}:BROKEN")
    engine = make_engine(url)
    try:
        with create_db_in_a_thread(config, url.database) as run, engine.connect() as other:
            other.execute(text("SELECT 1")).scalar_one()
            other.commit()
            run.go_on()
            run.join()
            assert other.execute(text("SELECT 2")).scalar_one() == 2  # not disconnected
    finally:
        engine.dispose()
    assert picture(url) is not None and picture(url)["tables"] == {}
    message = str(run.error)
    assert message.startswith(f"building {url.render_as_string(hide_password=True)} failed:"), message
    assert "except the database it created, kept because 1 other session is connected to it" in message


def test_a_failed_build_drops_the_database_it_created_when_no_one_else_used_it(missing_database):
    url = missing_database
    with pytest.raises(CommandError, match="the database it created was dropped"):
        create_db(config_for(url, metadata=f"{__name__}:BROKEN"))
    assert picture(url) is None


# --- 2. objects it did not make ----------------------------------------------------------


def add_routine(url: URL, sql: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(sql)
    finally:
        engine.dispose()


# The declared function's name, defined by the user with another body (same arguments on
# PostgreSQL, where another argument list would be another function).
USERS_FUNCTION = {
    "postgresql": "CREATE FUNCTION add_customer_sp(in_name varchar, in_order_count integer, in_email varchar) "
    "RETURNS integer LANGUAGE sql AS 'SELECT 42'",
    "mysql": "CREATE FUNCTION add_customer_sp(x INT) RETURNS INT RETURN x * 2",
}
UNRELATED_FUNCTION = {
    "postgresql": "CREATE FUNCTION keep_me() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
    "mysql": "CREATE FUNCTION keep_me() RETURNS INT RETURN 1",
}


def test_create_db_keeps_an_existing_function_named_like_a_declared_one(database_url, dialect):
    if dialect == "sqlite":
        pytest.skip("SQLite has no functions")
    add_routine(database_url, USERS_FUNCTION[dialect])
    add_routine(database_url, UNRELATED_FUNCTION[dialect])
    before = picture(database_url)
    result = run_in_project(database_url, "create_db.py")
    assert result.returncode == 1, result.stdout
    assert picture(database_url) == before and len(before["objects"]) == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert "add_customer_sp" in result.stderr
    if dialect == "mysql":  # refused up front: its DDL could not be rolled back
        assert "already has function add_customer_sp, which create_db.py would create" in result.stderr
    assert "nothing was left behind" in result.stderr or "changed nothing" in result.stderr


# --- 3. a killed build ---------------------------------------------------------------------

FILLER_TABLES = 40
PAUSING_MODELS = f"""

# Added by the test: more tables, and a pause after half of them when CREATE_DB_PAUSE_MARKER is set.
import os as _os
import time as _time

import sqlalchemy as _sa

for _index in range({FILLER_TABLES}):
    _sa.Table(
        f"filler_{{_index:03}}",
        metadata,
        _sa.Column("id", _sa.Integer, primary_key=True),
        _sa.Column("customer_id", _sa.Integer, _sa.ForeignKey("customer.id")),
    )


@_sa.event.listens_for(metadata.tables["filler_{FILLER_TABLES // 2:03}"], "after_create")
def _pause(target, connection, **kw):
    marker = _os.environ.get("CREATE_DB_PAUSE_MARKER")
    if marker:
        open(marker, "w").close()
        _time.sleep(600)
"""


def kill_create_db_midway(project: Path, url: URL, marker: Path) -> None:
    """Run create_db.py in ``project`` and SIGKILL it once half of its tables are made."""
    log = marker.with_suffix(".log")
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "create_db.py"],
            cwd=project,
            env=environment(url, CREATE_DB_PAUSE_MARKER=str(marker)),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not marker.exists():
            assert process.poll() is None, f"exited {process.returncode} before the pause:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the build never paused:\n{log.read_text()}"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=TIMEOUT)


@pytest.fixture
def pausing_project(project_copy: Path) -> Path:
    models = next(project_copy.glob("*/models.py"))
    models.write_text(models.read_text() + PAUSING_MODELS)
    return project_copy


def expected_line(url: URL, dialect: str) -> str:
    function = ", 1 function" if dialect != "sqlite" else ""
    where = url.render_as_string(hide_password=True)
    return f"Built {where}: {FILLER_TABLES + 1} tables, 1 view{function}; stamped at head {HEAD}."


def test_a_killed_build_is_finished_by_running_create_db_again(pausing_project, database_url, dialect, tmp_path):
    if dialect != "sqlite":
        add_routine(database_url, UNRELATED_FUNCTION[dialect])  # the user's: kept throughout
    before = picture(database_url)
    kill_create_db_midway(pausing_project, database_url, tmp_path / "paused")
    killed = picture(database_url)
    if dialect == "mysql":  # its DDL committed as it went: half the tables, no version row
        assert {"customer", "filler_000", f"filler_{FILLER_TABLES // 2:03}"} <= set(killed["tables"])
        assert "alembic_version" not in killed["rows"]
    else:  # one transaction: rolled back
        assert killed == before

    rerun = run_in_project(database_url, "create_db.py", cwd=pausing_project)
    assert rerun.returncode == 0, rerun.stderr
    after = picture(database_url)
    assert set(after["tables"]) == {"customer", *(f"filler_{index:03}" for index in range(FILLER_TABLES))}
    assert after["rows"]["alembic_version"] == [(HEAD,)]
    assert all(rows == [] for name, rows in after["rows"].items() if name != "alembic_version")
    assert {key: value for key, value in after["objects"].items() if "keep_me" in key} == before["objects"]
    assert rerun.stdout.strip() == expected_line(database_url, dialect)  # counts, not 41 names


def test_a_killed_build_whose_tables_got_rows_is_left_alone_with_advice_that_works(
    pausing_project, database_url, dialect, tmp_path
):
    if dialect != "mysql":
        pytest.skip("PostgreSQL and SQLite roll a killed build back: no tables are left to write to")
    kill_create_db_midway(pausing_project, database_url, tmp_path / "paused")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO customer (name) VALUES ('written since')"))
        before = picture(database_url)
        rerun = run_in_project(database_url, "create_db.py", cwd=pausing_project)
        assert rerun.returncode == 1, rerun.stdout
        assert rerun.stderr.count("\n") == 1 and "Traceback" not in rerun.stderr, rerun.stderr
        assert "customer has rows since" in rerun.stderr and "changed nothing" in rerun.stderr
        assert picture(database_url) == before and before["rows"]["customer"] != []
        # The advice: keep the rows elsewhere, empty the table, run create_db.py again.
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM customer"))
    finally:
        engine.dispose()
    rerun = run_in_project(database_url, "create_db.py", cwd=pausing_project)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == expected_line(database_url, dialect)


def test_a_build_killed_after_its_stamp_is_finished_by_running_create_db_again(database_url, dialect):
    if dialect != "mysql":
        pytest.skip("only MariaDB marks a build in progress: elsewhere the build is one transaction")
    from create_db import IN_PROGRESS, plan  # what create_db.py leaves when killed right after its stamp

    config = config_for(database_url)
    create_db(config)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            IN_PROGRESS.create(connection)
            planned = [{"kind": kind, "name": name} for kind, name in plan(target_metadata(config))]
            connection.execute(IN_PROGRESS.insert(), planned)
    finally:
        engine.dispose()
    before = picture(database_url)
    rerun = run_in_project(database_url, "create_db.py")
    assert rerun.returncode == 0, rerun.stderr
    assert f"was built and stamped at head {HEAD} by an interrupted create_db.py" in rerun.stdout
    after = picture(database_url)
    assert IN_PROGRESS.name in before["tables"] and IN_PROGRESS.name not in after["tables"]
    del before["tables"][IN_PROGRESS.name], before["rows"][IN_PROGRESS.name]
    assert after == before
