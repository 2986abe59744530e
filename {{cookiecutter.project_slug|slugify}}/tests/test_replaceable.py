"""Recipe 4, replaceable objects: the cookbook's views and stored function, really working."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text

from migrations.replaceable import ReplaceableObject


def view_columns(engine) -> list[str]:
    return [column["name"] for column in inspect(engine).get_columns("customer_view")]


def test_replace_view_upgrades_and_its_downgrade_restores_the_old_view(alembic_config, engine):
    command.upgrade(alembic_config, "head")
    assert view_columns(engine) == ["name", "order_count", "email"]
    command.downgrade(alembic_config, "191a2d20b025")
    assert view_columns(engine) == ["name", "order_count"]


def test_the_stored_function_returns_the_new_customers_id(alembic_config, engine, dialect):
    if dialect == "sqlite":
        pytest.skip("SQLite has no stored functions")
    command.upgrade(alembic_config, "head")
    with engine.begin() as connection:
        first = connection.execute(text("SELECT add_customer_sp('ann', 2, 'ann@example.com')")).scalar_one()
        second = connection.execute(text("SELECT add_customer_sp('bob', 0, 'bob@example.com')")).scalar_one()
        stored = connection.execute(text("SELECT id, name, email FROM customer ORDER BY id")).all()
    assert [tuple(row) for row in stored] == [(first, "ann", "ann@example.com"), (second, "bob", "bob@example.com")]
    assert second == first + 1


def operations(alembic_config, connection) -> Operations:
    script = ScriptDirectory.from_config(alembic_config)
    return Operations(MigrationContext.configure(connection, opts={"script": script}))


def test_a_reference_to_a_missing_revision_names_it(alembic_config, engine):
    view = ReplaceableObject("customer_view", "SELECT 1")
    with engine.connect() as connection:
        with pytest.raises(CommandError, match="no revision 'nosuchrev'"):
            operations(alembic_config, connection).replace_view(view, replaces="nosuchrev.customer_view")


def test_a_reference_to_a_missing_object_names_it(alembic_config, engine):
    view = ReplaceableObject("customer_view", "SELECT 1")
    with engine.connect() as connection:
        with pytest.raises(CommandError, match="defines no ReplaceableObject 'no_such_view'"):
            operations(alembic_config, connection).replace_view(view, replaces="28af9800143f.no_such_view")


def test_a_stored_function_on_sqlite_is_an_error_naming_both(alembic_config, engine, dialect):
    if dialect != "sqlite":
        pytest.skip("only SQLite lacks stored functions")
    with engine.connect() as connection:
        with pytest.raises(CommandError, match="a function is not supported on sqlite"):
            operations(alembic_config, connection).create_sp(ReplaceableObject("f()", "RETURNS int"))
