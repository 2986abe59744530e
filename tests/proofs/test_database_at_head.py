"""A fresh database at head per test (migrations/testing/fixtures.py's ``database_at_head``):
each copy is what ``python create_db.py`` builds; on MariaDB a copy its test is done with
is used again only when it is as good as new; a test that only reads gets the session's
build itself, and on PostgreSQL no copy of it is under way meanwhile. The databases made
ahead (migrations/testing/ahead.py) are there for the tests counted, even when others take
some first. And create_db() called again in one process (migrations/stamp.py keeps the
history loaded) sees revisions added or removed in between."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import URL, text

from create_db import create_db
from migrations.settings import make_engine, server_url
from migrations.testing.ahead import Ahead
from migrations.testing.fixtures import Databases, HeadTemplate, create_database, drop_database, project_config
from migrations.testing.schema import snapshot
from proofs.helpers import run_in_project


def picture(url: URL) -> tuple:
    """The schema and the version rows."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            return snapshot(connection), versions
    finally:
        engine.dispose()


def test_a_copy_at_head_is_what_create_db_py_builds(database_at_head, database_url):
    result = run_in_project(database_url, "create_db.py")
    assert result.returncode == 0, result.stderr
    assert picture(database_at_head) == picture(database_url)


def test_database_at_head_gives_each_test_a_copy_of_its_own(database_at_head, new_database_at_head):
    first, second = database_at_head, new_database_at_head()
    assert first != second and picture(first) == picture(second)
    engine = make_engine(first)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE probe_own (id INTEGER PRIMARY KEY)")
    engine.dispose()
    assert "probe_own" in picture(first)[0]["tables"] and "probe_own" not in picture(second)[0]["tables"]


def test_a_test_that_only_reads_gets_the_build_itself(database_at_head_read_only, database_at_head, head_template):
    assert database_at_head_read_only == head_template.url != database_at_head
    assert picture(database_at_head_read_only) == picture(database_at_head)


def test_made_ahead_a_database_taken_beyond_the_count_is_made_again_and_none_is_copied_while_held(server, dialect):
    if dialect != "postgresql":
        pytest.skip("databases are made ahead on PostgreSQL only (elsewhere one costs milliseconds)")
    made: list[URL] = []
    held = threading.Event()
    copied_while_held: list[str] = []

    def create(template: str | None) -> URL:
        if template is not None and held.is_set():  # begun while someone may be connected to it
            copied_while_held.append(template)
        url = create_database(server, template)
        made.append(url)
        return url

    ahead = Ahead(create, drop_database, empties=1, copies=3)
    try:
        extra = ahead.empty(counted=False)  # a second walk's, say: one more is made in its place
        counted = ahead.empty()
        assert extra is not None and counted is not None and extra != counted
        assert ahead.empty(counted=False) is None  # none left: its caller makes one then
        template = counted.database  # an empty database serves as a template here
        ahead.copies_of(template)  # two begun at once
        with ahead.holding(template):  # waits for them
            held.set()
            first = ahead.copy(template)  # one made: no other is begun in its place meanwhile
            engine = make_engine(counted)
            with engine.connect() as connection:
                connection.execute(text("SELECT pg_sleep(0.5)"))
            engine.dispose()
            held.clear()
        copies = [first, ahead.copy(template), ahead.copy(template)]
        assert copied_while_held == [] and None not in copies and len(set(copies)) == 3
        ahead.stop_copies(template)
        ahead.drop([extra, counted, *copies])
    finally:
        ahead.close()
    assert not any(exists(server, url.database) for url in made)


def exists(server: URL, database: str) -> bool:
    engine = make_engine(server_url(server))
    try:
        with engine.connect() as connection:
            found = "SELECT count(*) FROM pg_database WHERE datname = :name"
            return connection.execute(text(found), {"name": database}).scalar() == 1
    finally:
        engine.dispose()


def test_a_mariadb_copy_is_used_again_only_when_as_good_as_new(head_template: HeadTemplate, tmp_path, dialect):
    if dialect not in ("mysql", "mariadb"):
        pytest.skip("only MariaDB gives copies back (elsewhere a copy costs milliseconds)")
    databases = Databases(head_template.databases.server, tmp_path)
    copy = databases.copy_of(head_template)
    expected = picture(copy)
    engine = make_engine(copy)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO customer (name, order_count) VALUES ('a', 1), ('b', 2)"))
        connection.execute(text("UPDATE alembic_version SET version_num = 'elsewhere'"))
    engine.dispose()
    databases.drop_all()
    assert head_template.spares[-1] == copy  # given back

    again = databases.copy_of(head_template)
    assert again == copy and picture(again) == expected
    engine = make_engine(again)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM customer")).scalar() == 0
        connection.execute(text("INSERT INTO customer (name) VALUES ('c')"))
        assert connection.execute(text("SELECT id FROM customer")).scalar() == 1  # the counter was put back
        connection.exec_driver_sql("ALTER TABLE customer ADD COLUMN later INTEGER")
    engine.dispose()
    databases.drop_all()
    assert copy not in head_template.spares  # its schema changed: dropped
    admin = make_engine(head_template.url)
    with admin.connect() as connection:
        gone = "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :name"
        assert connection.execute(text(gone), {"name": copy.database}).scalar() == 0
    admin.dispose()


def version(url: URL) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    finally:
        engine.dispose()


def test_create_db_again_in_one_process_stamps_the_head_of_the_history_as_it_is_now(project_copy: Path, new_database):
    def config_for(url: URL) -> Config:
        config = project_config(project_copy)
        config.attributes["database_url"] = url
        config.attributes["configure_logger"] = False
        return config

    first, second, third = new_database(), new_database(), new_database()
    create_db(config_for(first))
    written = command.revision(config_for(first), message="added later", rev_id="feedfacecafe")
    create_db(config_for(second))
    Path(written.path).unlink()
    create_db(config_for(third))
    assert version(second) == ["feedfacecafe"]
    assert version(first) == version(third) != ["feedfacecafe"]
