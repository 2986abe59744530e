"""Revisions that end the transaction they were given, and other holes real histories found.

A revision that builds or drops an index in ``op.get_context().autocommit_block()`` (with
``postgresql_concurrently=True``, the standard way on a live PostgreSQL table) commits the
run's transaction, and the stairway's SAVEPOINT with it: the walk must neither call it
faulty nor lose the revisions after it. And: a new database that cannot be brought to where
the walk goes on is a fault, not a crash; a failed run says what its commits left applied;
inside a caller's transaction such a revision is refused in one line; a table renamed on
SQLite keeps the foreign keys that point at it (env.py scopes the legacy rename to batch
mode's own rename).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from migrations.autocommit import AutocommitInCallersTransaction
from migrations.testing.fixtures import project_config
from migrations.testing.stairway import load_script, walk
from proofs.helpers import PROJECT, alembic_cli
from proofs.test_stairway import HEAD, revision_source
from proofs.test_walk import fresh_on, run_suite

TABLE = (
    'op.create_table("probe_t", sa.Column("id", sa.Integer(), nullable=False), sa.Column("x", sa.Integer()),'
    ' sa.PrimaryKeyConstraint("id", name="pk_probe_t"))'
)


def concurrently(*statements: str) -> str:
    """The statements in an autocommit block, as a revision on a live PostgreSQL table writes them."""
    body = "\n".join(f"    {statement}" for statement in statements)
    return f"with op.get_context().autocommit_block():\n{body}"


CREATE_INDEX = 'op.create_index("ix_probe_t_x", "probe_t", ["x"], postgresql_concurrently=True)'
DROP_INDEX = 'op.drop_index("ix_probe_t_x", table_name="probe_t", postgresql_concurrently=True)'
LEAVE_INDEX = 'op.create_index("ix_probe_t_x_old", "probe_t", ["x"], postgresql_concurrently=True)'


def through_the_driver(*statements: str) -> str:
    """The statements after a commit through the driver's own connection, behind SQLAlchemy's
    back, in the driver's autocommit where it has one (psycopg), as Arize Phoenix's revisions
    build and drop their CONCURRENTLY indexes (PHOENIX_MIGRATE_INDEX_CONCURRENTLY=true)."""
    body = "\n".join(f"    {statement}" for statement in statements)
    return (
        "driver = op.get_bind().connection.dbapi_connection\n"
        "driver.commit()\n"
        'switch = op.get_bind().dialect.name == "postgresql"\n'
        "if switch:\n"
        "    driver.autocommit = True\n"
        f"try:\n{body}\n"
        "finally:\n"
        "    if switch:\n"
        "        driver.autocommit = False"
    )


def second_table(name: str) -> str:
    return TABLE.replace("probe_t", name)


def write(project: Path, *sources: str) -> None:
    for number, source in enumerate(sources):
        (project / "migrations" / "versions" / f"probe_{number}.py").write_text(source)


def walked(project: Path, new_database, **options):
    script = load_script(project_config(project))
    return list(walk(script, lambda: fresh_on(new_database, script, project), **options))


def test_a_correct_autocommit_revision_is_clean_and_the_next_one_is_walked(project_copy, new_database):
    write(
        project_copy,
        revision_source("k1", HEAD, TABLE, 'op.drop_table("probe_t")'),
        revision_source("k2", "k1", concurrently(CREATE_INDEX), concurrently(DROP_INDEX)),
        revision_source("k3", "k2", second_table("probe_u"), "pass  # forgets op.drop_table"),
    )
    steps = walked(project_copy, new_database)
    assert [step.revision.revision for step in steps][-3:] == ["k1", "k2", "k3"]  # each once, none passed over
    assert [str(step) for step in steps if step.fault()] == ["k3 (k3)"], [step.fault() for step in steps]


def test_a_faulty_autocommit_revision_is_named_and_the_walk_goes_on(project_copy, new_database, server, tmp_path):
    """k2's downgrade, in its autocommit block, leaves an index behind: committed, it cannot be
    rolled back to the SAVEPOINT; the walk checks where the database is (or takes a new
    one), walks k3 (correct) and names k4. The baked suite says so in one message."""
    write(
        project_copy,
        revision_source("k1", HEAD, TABLE, 'op.drop_table("probe_t")'),
        revision_source("k2", "k1", concurrently(CREATE_INDEX), concurrently(LEAVE_INDEX, DROP_INDEX)),
        revision_source("k3", "k2", second_table("probe_u"), 'op.drop_table("probe_u")'),
        revision_source("k4", "k3", second_table("probe_v"), "pass  # forgets op.drop_table"),
    )
    steps = walked(project_copy, new_database)
    assert [step.revision.revision for step in steps][-4:] == ["k1", "k2", "k3", "k4"]
    assert [step.revision.revision for step in steps if step.fault()] == ["k2", "k4"]
    assert "ix_probe_t_x_old" in steps[-3].fault()
    shutil.copytree(PROJECT / "tests", project_copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    outcomes = run_suite(project_copy, server.render_as_string(hide_password=False), tmp_path)
    message = outcomes["test_each_downgrade_undoes_its_upgrade"]
    total = len(steps)
    assert message is not None and f"2 of {total} revisions are faulty:" in message, message
    assert not re.search(r"\d+ revisions after the failed upgrade were not walked", message), message
    assert "k3 (k3)" not in message, message


def test_a_revision_that_commits_through_the_driver_is_clean_and_a_faulty_one_is_named(project_copy, new_database):
    """k2 and k4 commit the run's transaction through the driver's own connection, which
    SQLAlchemy does not see, and the walk's SAVEPOINT is gone with it: neither is called
    faulty for that (the walk neither rolls back to nor releases it: on PostgreSQL either
    failed, "savepoint ... does not exist", and aborted the transaction after it), k3 after
    k2 is walked, and k4, whose downgrade leaves an index behind, is named."""
    write(
        project_copy,
        revision_source("k1", HEAD, TABLE, 'op.drop_table("probe_t")'),
        revision_source("k2", "k1", through_the_driver(CREATE_INDEX), through_the_driver(DROP_INDEX)),
        revision_source("k3", "k2", second_table("probe_u"), 'op.drop_table("probe_u")'),
        revision_source("k4", "k3", through_the_driver(LEAVE_INDEX), through_the_driver("pass  # leaves it")),
        revision_source("k5", "k4", second_table("probe_v"), 'op.drop_table("probe_v")'),
    )
    steps = walked(project_copy, new_database)
    assert [step.revision.revision for step in steps][-5:] == ["k1", "k2", "k3", "k4", "k5"]
    assert [step.revision.revision for step in steps if step.fault()] == ["k4"], [step.fault() for step in steps]
    assert "its downgrade did nothing" in steps[-2].fault()


def test_a_revision_that_fails_on_the_way_to_a_new_database_is_a_fault_not_a_crash(project_copy, new_database):
    """The walk brings a new database to where it goes on (here: past start_after). A revision
    that fails to upgrade there is reported with what was found so far, not raised."""
    write(
        project_copy,
        revision_source("m1", HEAD, 'op.execute("SELECT * FROM probe_table_not_there")'),
        revision_source("m2", "m1", TABLE, 'op.drop_table("probe_t")'),
    )
    steps = walked(project_copy, new_database, start_after="m1")
    faults = [step.fault() for step in steps if step.fault()]
    assert len(faults) == 1 and faults[0].startswith("m1 (m1): upgrading it failed"), faults
    assert "probe_table_not_there" in faults[0]


def test_a_failed_run_says_what_its_autocommit_block_left_applied(project_copy, database_url, dialect):
    write(
        project_copy,
        revision_source("n1", HEAD, TABLE, 'op.drop_table("probe_t")'),
        revision_source("n2", "n1", concurrently(CREATE_INDEX), concurrently(DROP_INDEX)),
        revision_source("n3", "n2", 'op.execute("SELECT * FROM probe_table_not_there")'),
    )
    result = alembic_cli(database_url, "upgrade", "head", cwd=project_copy)
    assert result.returncode != 0
    said = result.stderr.strip().splitlines()[-1] + result.stdout
    assert "revision n3 (probe_2.py) failed" in said, result.stderr
    if dialect == "mysql":  # one transaction per migration: n2 is recorded
        assert "The migrations before it are applied" in said, said
    else:
        assert "Nothing of this run was applied" not in said, said
        # n2's block committed n1 and n2's index; n2's version row came after it, and was rolled back
        assert "revision n2 committed this run in its autocommit_block(): the database is at n1" in said, said
    current = alembic_cli(database_url, "current", cwd=project_copy)
    expected = "n2" if dialect == "mysql" else "n1"
    assert current.stdout.split()[:1] == [expected], current.stdout + current.stderr


def test_inside_a_callers_transaction_an_autocommit_revision_is_refused_in_one_line(
    project_copy, alembic_config, engine, server, dialect
):
    write(
        project_copy,
        revision_source("p1", HEAD, TABLE, 'op.drop_table("probe_t")'),
        revision_source("p2", "p1", concurrently(CREATE_INDEX), concurrently(DROP_INDEX)),
    )
    config = project_config(project_copy)
    config.attributes["database_url"] = alembic_config.attributes["database_url"]
    config.attributes["configure_logger"] = False
    with engine.connect() as connection:
        transaction = connection.begin()
        config.attributes["connection"] = connection
        with pytest.raises(AutocommitInCallersTransaction) as raised:
            command.upgrade(config, "head")
        transaction.rollback()
    assert str(raised.value).startswith("revision p2 (probe_1.py) failed: it uses autocommit_block(), which commits")
    if dialect != "mysql":  # MariaDB commits each DDL statement: the caller's rollback undoes nothing
        assert "probe_t" not in inspect(engine).get_table_names()
    # The baked recipe test of recipe 3 skips, naming that cause (not "cannot upgrade to head").
    shutil.copytree(PROJECT / "tests", project_copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    env["TEST_DATABASE_URL"] = server.render_as_string(hide_password=False)
    test = "tests/test_recipes.py::test_a_shared_connection_leaves_the_commit_to_its_caller"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-p", "no:cacheprovider", "-q", "-rs"],
        cwd=project_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"SKIPPED .*a caller's transaction cannot hold this history: revision p2", result.stdout)


RENAME_SETUP = (
    'op.create_table("probe_parent", sa.Column("id", sa.Integer(), nullable=False),'
    ' sa.PrimaryKeyConstraint("id", name="pk_probe_parent"))\n'
    'op.create_table("probe_child", sa.Column("id", sa.Integer(), nullable=False),'
    ' sa.Column("parent_id", sa.Integer()), sa.PrimaryKeyConstraint("id", name="pk_probe_child"),'
    ' sa.ForeignKeyConstraint(["parent_id"], ["probe_parent.id"], name="fk_probe_child_parent_id"))'
)
BATCH = 'with op.batch_alter_table("probe_child") as batch:\n    batch.'
RENAME_UP = (
    'op.rename_table("probe_parent", "probe_guardian")\n'
    + BATCH
    + 'alter_column("parent_id", new_column_name="guardian_id", existing_type=sa.Integer())'
)
RENAME_DOWN = (
    BATCH
    + 'alter_column("guardian_id", new_column_name="parent_id", existing_type=sa.Integer())\n'
    + 'op.rename_table("probe_guardian", "probe_parent")'
)


def test_a_renamed_table_keeps_the_foreign_keys_that_point_at_it(project_copy, database_url, new_database, dialect):
    """SQLite rewrites the foreign keys that name a renamed table, unless legacy_alter_table is
    on: env.py turns it on for batch mode's own rename only (views on a rebuilt table survive:
    see test_replaceable). The upgrade, its downgrade and the stairway work as with
    Alembic's own env.py."""
    write(
        project_copy,
        revision_source("q1", HEAD, RENAME_SETUP, 'op.drop_table("probe_child")\nop.drop_table("probe_parent")'),
        revision_source("q2", "q1", RENAME_UP, RENAME_DOWN),
    )
    for args in (["upgrade", "q2"], ["downgrade", "-1"], ["upgrade", "head"]):
        result = alembic_cli(database_url, *args, cwd=project_copy)
        assert result.returncode == 0, result.stderr
    steps = walked(project_copy, new_database)
    assert [step.fault() for step in steps if step.fault()] == []
    assert [step.revision.revision for step in steps][-2:] == ["q1", "q2"]
    if dialect == "sqlite":
        engine = create_engine(database_url)
        try:
            foreign_keys = inspect(engine).get_foreign_keys("probe_child")
        finally:
            engine.dispose()
        assert [key["referred_table"] for key in foreign_keys] == ["probe_guardian"]
