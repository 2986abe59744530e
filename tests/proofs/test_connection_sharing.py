"""Recipe 3, sharing a connection: the caller's transaction owns commit and rollback."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text


def head(config) -> str:
    return ScriptDirectory.from_config(config).get_current_head()


def version(engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_a_rolled_back_transaction_leaves_no_trace(alembic_config, engine, dialect):
    if dialect in ("mysql", "mariadb"):
        pytest.skip("MariaDB commits every DDL statement implicitly: no transaction can undo it")
    with engine.connect() as connection:
        transaction = connection.begin()
        alembic_config.attributes["connection"] = connection
        command.upgrade(alembic_config, "head")
        assert "customer" in inspect(connection).get_table_names()  # visible inside
        transaction.rollback()
    assert inspect(engine).get_table_names() == []
    assert inspect(engine).get_view_names() == []


def test_the_callers_commit_keeps_the_migrations(alembic_config, engine):
    with engine.begin() as connection:
        alembic_config.attributes["connection"] = connection
        command.upgrade(alembic_config, "head")
    assert version(engine) == head(alembic_config)


def test_a_connection_outside_a_transaction_is_committed_by_alembic(alembic_config, engine):
    with engine.connect() as connection:
        alembic_config.attributes["connection"] = connection
        command.upgrade(alembic_config, "head")
    assert version(engine) == head(alembic_config)


def test_an_engine_in_the_attribute_is_used(alembic_config, engine):
    alembic_config.attributes["connection"] = engine  # what pytest-alembic passes
    command.upgrade(alembic_config, "head")
    assert version(engine) == head(alembic_config)


def test_the_callers_sqlite_connection_keeps_its_settings(alembic_config, engine, dialect):
    if dialect != "sqlite":
        pytest.skip("the legacy_alter_table pragma is SQLite's")
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        before = raw.execute("PRAGMA legacy_alter_table").fetchone()[0]
        alembic_config.attributes["connection"] = connection
        command.upgrade(alembic_config, "head")
        assert raw.execute("PRAGMA legacy_alter_table").fetchone()[0] == before


def test_anything_else_in_the_attribute_is_an_error_not_another_database(alembic_config, engine):
    """A wrapper that is neither (pytest-alembic's experimental tests pass one) must not make
    env.py fall back to DATABASE_URL or alembic.ini and migrate that database instead."""
    alembic_config.attributes["connection"] = object()
    with pytest.raises(CommandError, match=r'config.attributes\["connection"\] is a object: give a Connection'):
        command.upgrade(alembic_config, "head")
    assert version(engine) is None
