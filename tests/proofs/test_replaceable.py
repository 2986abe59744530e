"""Recipe 4, replaceable objects: the cookbook's views and stored function, really working."""

from __future__ import annotations

import io

import pytest
from alembic import command
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text

from migrations.declared import READERS
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


KIND_SQL = {
    "view": {"any": ("customer_names", "SELECT name FROM customer", "SELECT name, email FROM customer")},
    "materialized_view": {
        "postgresql": (
            "customer_total",
            "SELECT count(*) AS n FROM customer",
            "SELECT count(*) AS n, 1 AS one FROM customer",
        )
    },
    "sp": {
        "postgresql": (
            "answer()",
            "RETURNS integer LANGUAGE sql AS $$ SELECT 41 $$",
            "RETURNS integer LANGUAGE sql AS $$ SELECT 42 $$",
        ),
        "mysql": ("answer", "() RETURNS INTEGER DETERMINISTIC RETURN 41", "() RETURNS INTEGER DETERMINISTIC RETURN 42"),
    },
    "procedure": {
        "postgresql": (
            "add_one(n integer)",
            "LANGUAGE sql AS $$ INSERT INTO customer (name, order_count) VALUES ('one', n) $$",
            "LANGUAGE sql AS $$ INSERT INTO customer (name, order_count) VALUES ('uno', n) $$",
        ),
        "mysql": (
            "add_one",
            "(n INTEGER) BEGIN INSERT INTO customer (name, order_count) VALUES ('one', n); END",
            "(n INTEGER) BEGIN INSERT INTO customer (name, order_count) VALUES ('uno', n); END",
        ),
    },
    "trigger": {
        "postgresql": (
            "customer_noop",
            "AFTER INSERT ON customer FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
            "AFTER UPDATE ON customer FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
        ),
        "mysql": (
            "customer_noop",
            "BEFORE INSERT ON customer FOR EACH ROW SET NEW.order_count = NEW.order_count",
            "BEFORE UPDATE ON customer FOR EACH ROW SET NEW.order_count = NEW.order_count",
        ),
        "sqlite": (
            "customer_noop",
            "AFTER INSERT ON customer BEGIN SELECT 1; END",
            "AFTER UPDATE ON customer BEGIN SELECT 1; END",
        ),
    },
}
LABELS = {"view": "view", "materialized_view": "materialized view", "sp": "function", "procedure": "procedure"}


def sql_for(kind: str, dialect: str):
    forms = KIND_SQL[kind]
    return forms.get("any") or forms.get("mysql" if dialect == "mariadb" else dialect)


def present(connection, kind: str, name: str) -> str | None:
    label = LABELS.get(kind, "trigger")
    for (found_label, found_name), (_, definition) in READERS[connection.dialect.name].existing(connection).items():
        if found_label == label and found_name.partition("(")[0].split(" ON ")[0] == name.partition("(")[0]:
            return definition
    return None


@pytest.mark.parametrize("kind", list(KIND_SQL))
def test_each_kind_is_created_replaced_and_dropped(alembic_config, engine, dialect, kind):
    forms = sql_for(kind, dialect)
    if forms is None:
        pytest.skip(f"{kind} is not a kind {dialect} has")
    name, first, second = forms
    command.upgrade(alembic_config, "head")
    old, new = ReplaceableObject(name, first), ReplaceableObject(name, second)
    with engine.begin() as connection:
        op = operations(alembic_config, connection)
        getattr(op, f"create_{kind}")(old)
        before = present(connection, kind, name)
        getattr(op, f"replace_{kind}")(new, replaces=old)
        after = present(connection, kind, name)
        getattr(op, f"replace_{kind}")(new, replace_with=old)  # the downgrade: back to the old one
        restored = present(connection, kind, name)
        getattr(op, f"drop_{kind}")(old)
        dropped = present(connection, kind, name)
    assert before and after and before != after
    assert restored == before
    assert dropped is None


@pytest.mark.parametrize("kind", ["materialized_view", "sp", "procedure"])
def test_a_kind_the_database_lacks_is_an_error_naming_both(alembic_config, engine, dialect, kind):
    if sql_for(kind, dialect) is not None:
        pytest.skip(f"{dialect} has {kind}")
    with engine.connect() as connection:
        with pytest.raises(CommandError, match=f"a {LABELS[kind]} is not supported on {dialect}"):
            getattr(operations(alembic_config, connection), f"create_{kind}")(ReplaceableObject("x", "SELECT 1"))


def test_a_schema_qualified_reference_finds_the_object(alembic_config, engine, dialect, database_url):
    # The schema the example's objects live in: PostgreSQL's public, MariaDB's database, SQLite's main.
    schema = {"postgresql": "public", "sqlite": "main"}.get(dialect, database_url.database)
    command.upgrade(alembic_config, "head")
    new = ReplaceableObject(f"{schema}.customer_view", "SELECT name, order_count, email, id FROM customer")
    with engine.begin() as connection:
        operations(alembic_config, connection).replace_view(new, replaces=f"28af9800143f.{schema}.customer_view")
        columns = [column["name"] for column in inspect(connection).get_columns("customer_view")]
    assert columns == ["name", "order_count", "email", "id"]


def test_offline_mode_writes_every_operation_as_sql(alembic_config, dialect):
    buffer = io.StringIO()
    script = ScriptDirectory.from_config(alembic_config)
    context = MigrationContext.configure(
        dialect_name="mysql" if dialect == "mariadb" else dialect,
        opts={"as_sql": True, "output_buffer": buffer, "script": script},
    )
    op = Operations(context)
    kinds = 0
    for kind in KIND_SQL:
        forms = sql_for(kind, dialect)
        if forms is None:
            continue
        name, first, second = forms
        old, new = ReplaceableObject(name, first), ReplaceableObject(name, second)
        getattr(op, f"create_{kind}")(old)
        getattr(op, f"replace_{kind}")(new, replaces=old)
        getattr(op, f"drop_{kind}")(new)
        kinds += 1
        sql = buffer.getvalue()
        assert first in sql and second in sql, kind
    assert kinds >= 2
    assert sql.count("DROP ") >= kinds


def test_replacing_a_view_keeps_what_hangs_off_its_dependants(alembic_config, engine, dialect):
    if dialect != "postgresql":
        pytest.skip("only PostgreSQL refuses to drop a view others depend on")
    command.upgrade(alembic_config, "head")
    with engine.begin() as connection:
        for statement in (
            "CREATE MATERIALIZED VIEW customer_emails AS SELECT name, email FROM customer_view",
            "CREATE INDEX ix_customer_emails_name ON customer_emails (name)",
            "CREATE VIEW named_customers AS SELECT name FROM customer_view",
            "GRANT SELECT ON named_customers TO PUBLIC",
            "COMMENT ON VIEW named_customers IS 'who bought'",
        ):
            connection.exec_driver_sql(statement)
        # customer_view loses a column: CREATE OR REPLACE cannot do that, so the views on it
        # are dropped and rebuilt around it, with their index, grant and comment.
        old = ReplaceableObject("customer_view", "SELECT name, order_count, email FROM customer WHERE order_count > 0")
        narrower = ReplaceableObject("customer_view", "SELECT name, email FROM customer WHERE order_count > 1")
        operations(alembic_config, connection).replace_view(narrower, replaces=old)
        found = connection.execute(
            text(
                "SELECT (SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_customer_emails_name'),"
                " has_table_privilege('public', 'named_customers', 'SELECT'),"
                " obj_description('named_customers'::regclass, 'pg_class')"
            )
        ).one()
        columns = [column["name"] for column in inspect(connection).get_columns("customer_view")]
    assert columns == ["name", "email"]
    assert tuple(found) == (1, True, "who bought")
