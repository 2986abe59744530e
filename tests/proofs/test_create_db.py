"""Recipe 1, a database from scratch: what create_db.py says, what it refuses, and what a
failed build leaves (nothing). That it builds what `upgrade head` builds, views and
functions included, is part of the migration suite: tests/test_migrations.py."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from migrations.build_cleanup import database_exists
from migrations.settings import make_engine, server_url
from migrations.testing.fixtures import project_config
from migrations.testing.schema import leftovers, snapshot
from proofs.helpers import drop_database, environment, run_in_project
from proofs.test_stairway import revision_source


def rows(url) -> list[tuple]:
    with make_engine(url).connect() as connection:
        customers = connection.execute(text("SELECT id, name, order_count FROM customer ORDER BY id")).all()
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return [tuple(row) for row in customers + versions]


def config_for(url) -> Config:
    config = project_config()
    config.attributes["database_url"] = url
    return config


def test_create_db_says_what_it_did_in_one_short_line(database_url, dialect):
    result = run_in_project(database_url, "create_db.py")
    assert result.returncode == 0, result.stderr
    function = ", 1 function" if dialect != "sqlite" else ""  # add_customer_sp, on the servers
    where = database_url.render_as_string(hide_password=True)
    assert result.stdout == f"Built {where}: 1 table, 1 view{function}; stamped at head 199028bf9856.\n"


def test_create_db_refuses_a_database_with_tables_and_keeps_every_row(database_url):
    config = config_for(database_url)
    config.attributes["data"] = True
    command.upgrade(config, "head")
    before = rows(database_url)
    result = run_in_project(database_url, "create_db.py")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr  # one line
    assert "is not empty" in result.stderr and "Traceback" not in result.stderr
    assert rows(database_url) == before and len(before) == 4


def test_create_db_refuses_a_database_with_only_a_version_row(database_url):
    command.stamp(config_for(database_url), "head")
    result = run_in_project(database_url, "create_db.py")
    assert result.returncode == 1
    assert "alembic_version" in result.stderr


def test_create_db_builds_a_database_downgraded_to_base(database_url):
    """`alembic downgrade base` leaves an empty version table and nothing else: a new database."""
    config = config_for(database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    result = run_in_project(database_url, "create_db.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Built {database_url.render_as_string(hide_password=True)}: 1 table, 1 view")
    assert rows(database_url) == [("199028bf9856",)]


def test_a_failed_build_at_base_keeps_the_version_table_it_found(project_copy, database_url):
    """MariaDB's undo too removes only what the build made: not the version table it found."""
    config = config_for(database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    models = next(project_copy.glob("*/models.py"))
    models.write_text(models.read_text() + '\nbroken = View("broken", metadata, "SELEC nope FROM customer")\n')
    result = run_in_project(database_url, "create_db.py", cwd=project_copy)
    assert result.returncode == 1 and "nothing was left behind" in result.stderr, result.stderr
    with make_engine(database_url).connect() as connection:
        assert leftovers(snapshot(connection)) == {}  # the version table is not pictured
        assert inspect(connection).get_table_names() == ["alembic_version"]
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 0


@pytest.mark.parametrize("history", ["no revision", "two heads"])
def test_create_db_refuses_a_history_without_one_head_before_touching_any_database(
    project_copy, server, dialect, history
):
    """The example history deleted and no revision written yet (no head to stamp): one line
    saying what to run, before any database is made (a server's) or file written
    (SQLite's). Two unmerged heads: one line too, found once create_all has run (revision
    modules are imported only after it: see create_db.one_head), and nothing left behind."""
    versions = project_copy / "migrations" / "versions"
    if history == "no revision":
        for revision in versions.glob("*.py"):
            revision.unlink()
        expected = ("holds no revision yet", "alembic revision --autogenerate")
    else:
        versions.joinpath("probe_0.py").write_text(revision_source("b1b1b1b1b1b1", "191a2d20b025"))
        expected = ("has 2 heads (199028bf9856, b1b1b1b1b1b1)", "alembic merge heads")
    name = f"test_{uuid.uuid4().hex[:12]}"
    file = project_copy / f"{name}.db"
    url = server.set(database=name) if dialect != "sqlite" else server.set(database=str(file))
    try:
        for args in ((), ("--sql",)):
            result = run_in_project(url, "create_db.py", *args, cwd=project_copy)
            assert result.returncode == 1, result.stdout
            assert result.stderr.count("\n") == 1 and all(part in result.stderr for part in expected), result.stderr
            assert result.stdout == ""
        if dialect == "sqlite" and history == "no revision":
            assert not file.exists()
        elif dialect == "sqlite":  # rolled back: the file SQLite made on connecting, empty
            with make_engine(url).connect() as connection:
                assert inspect(connection).get_table_names() == []
        else:
            with make_engine(server_url(url)).connect() as connection:
                assert not database_exists(connection, name)
    finally:
        if dialect != "sqlite":
            drop_database(url)


def test_create_db_sql_prints_the_ddl_and_touches_nothing(database_url):
    result = run_in_project(database_url, "create_db.py", "--sql")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE customer" in result.stdout
    assert "INSERT INTO alembic_version" in result.stdout
    with make_engine(database_url).connect() as connection:
        assert snapshot(connection)["tables"] == {}


def test_create_db_sql_read_in_part_ends_without_a_traceback(project_copy, database_url):
    """`python create_db.py --sql | head`: the reader closes the pipe early. 600 more tables
    make more SQL than a pipe holds, so the writer is still writing when it does."""
    models = next(project_copy.glob("*/models.py"))
    many = (
        "\n\nfrom sqlalchemy import Column, Integer, Table  # noqa: E402\n\nfor _n in range(600):\n"
        "    Table(f'pipe_probe_{_n:03d}', metadata, Column('id', Integer, primary_key=True))\n"
    )
    models.write_text(models.read_text() + many)
    command = [sys.executable, "create_db.py", "--sql"]
    env = environment(database_url)
    process = subprocess.Popen(command, cwd=project_copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.readline().startswith(b"CREATE")
    process.stdout.close()  # as head does after its first lines
    _, errors = process.communicate(timeout=120)
    assert b"Traceback" not in errors and b"BrokenPipeError" not in errors, errors.decode()
    with make_engine(database_url).connect() as connection:
        assert snapshot(connection)["tables"] == {}


def test_a_failed_build_leaves_nothing_behind(project_copy, database_url):
    models = next(project_copy.glob("*/models.py"))
    models.write_text(models.read_text() + '\nbroken = View("broken", metadata, "SELEC nope FROM customer")\n')
    result = run_in_project(database_url, "create_db.py", cwd=project_copy)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    with make_engine(database_url).connect() as connection:
        assert leftovers(snapshot(connection)) == {}  # MariaDB too: undone


def test_a_failed_build_drops_the_database_it_created(project_copy, server, dialect):
    if dialect == "sqlite":
        pytest.skip("create_db.py creates server databases only")
    models = next(project_copy.glob("*/models.py"))
    models.write_text(models.read_text() + '\nbroken = View("broken", metadata, "SELEC nope FROM customer")\n')
    url = server.set(database=f"test_{uuid.uuid4().hex[:12]}")
    try:
        result = run_in_project(url, "create_db.py", cwd=project_copy)
        assert result.returncode == 1, result.stdout
        with make_engine(server_url(url)).connect() as connection:
            assert not database_exists(connection, url.database)
    finally:
        drop_database(url)


def test_create_db_empty_makes_the_database_for_the_first_autogenerate(project_copy, server, dialect):
    """Day one with models of one's own: the example history deleted, no revision yet, the
    database in alembic.ini not made yet. `create_db.py --empty` makes it, empty; the first
    autogenerate then writes the tables; a second --empty changes nothing; once the tables are
    there, --empty refuses in one line."""
    for revision in (project_copy / "migrations" / "versions").glob("*.py"):
        revision.unlink()
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = server.set(database=name) if dialect != "sqlite" else server.set(database=str(project_copy / f"{name}.db"))
    try:
        first = run_in_project(url, "create_db.py", "--empty", cwd=project_copy)
        assert first.returncode == 0, first.stderr
        said = first.stdout.strip()
        if dialect == "sqlite":
            assert said.endswith(
                "SQLite creates the file when it is first used; now run "
                '`alembic revision --autogenerate -m "create tables"`.'
            ), said
        else:
            assert said.startswith("Created database ") and ", empty; now run" in said, said
            with make_engine(url).connect() as connection:
                assert inspect(connection).get_table_names() == []
            again = run_in_project(url, "create_db.py", "--empty", cwd=project_copy)
            assert again.returncode == 0 and "exists and is empty: nothing changed; now run" in again.stdout
        written = run_in_project(
            url, "-m", "alembic", "revision", "--autogenerate", "-m", "create tables", cwd=project_copy
        )
        assert written.returncode == 0, written.stderr
        (revision,) = (project_copy / "migrations" / "versions").glob("*_create_tables.py")
        assert 'op.create_table(\n        "customer"' in revision.read_text()
        upgraded = run_in_project(url, "-m", "alembic", "upgrade", "head", cwd=project_copy)
        assert upgraded.returncode == 0, upgraded.stderr
        late = run_in_project(url, "create_db.py", "--empty", cwd=project_copy)  # a database with tables: refused
        assert late.returncode == 1 and late.stderr.strip().splitlines() == [late.stderr.strip()], late.stderr
        assert " is not empty (alembic_version, customer)" in late.stderr and "Nothing changed." in late.stderr
    finally:
        if dialect != "sqlite":
            drop_database(url)
