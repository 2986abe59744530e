"""migrations/testing/schema.py: SQLite's schema rebuilt from its catalog reflects the same, and
``compared()`` tells two schemas apart, on every database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.config import Config
from sqlalchemy import Connection, event, text

from migrations.settings import make_engine
from migrations.testing.schema import compared, replayable, snapshot, snapshot_of_catalog, sqlite_catalog
from migrations.testing.stairway import Migrator, differences
from proofs.helpers import ALEMBIC_INI

# More kinds of SQLite object than the example history has, in an order that is not the
# order of kinds: a view on a view made before it, a trigger on a view.
SQLITE_EXTRAS = (
    "CREATE VIEW name_lengths AS SELECT name, length FROM named_lengths",
    "CREATE VIEW named_lengths AS SELECT name, length(name) AS length FROM counted",
    "CREATE TABLE counted (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
    " parent_id INTEGER REFERENCES counted (id), amount NUMERIC CHECK (amount >= 0))",
    "CREATE INDEX ix_counted_lower_name ON counted (lower(name))",
    "CREATE UNIQUE INDEX ix_counted_positive ON counted (amount) WHERE amount > 0",
    "CREATE TRIGGER counted_lengths INSTEAD OF INSERT ON name_lengths BEGIN"
    " INSERT INTO counted (name) VALUES (NEW.name); END",
    "CREATE TRIGGER counted_touch AFTER UPDATE ON counted BEGIN SELECT 1; END",
)


def upgraded(connection: Connection, database_url) -> None:
    config = Config(ALEMBIC_INI)
    config.attributes["database_url"] = database_url
    Migrator(config, connection).upgrade("heads")


@pytest.fixture
def two_at_head(new_database) -> Iterator[tuple[Connection, Connection]]:
    """Connections to two new databases, each upgraded to head."""
    urls = [new_database(), new_database()]
    engines = [make_engine(url) for url in urls]
    try:
        with engines[0].connect() as a, engines[1].connect() as b:
            for connection, url in ((a, urls[0]), (b, urls[1])):
                upgraded(connection, url)
            yield a, b
    finally:
        for engine in engines:
            engine.dispose()


def test_a_sqlite_schema_rebuilt_from_its_catalog_reflects_the_same(database_url, engine, dialect):
    if dialect != "sqlite":
        pytest.skip("sqlite_master is SQLite's")
    with engine.connect() as connection:
        upgraded(connection, database_url)
        with connection.begin():
            for statement in SQLITE_EXTRAS:
                connection.exec_driver_sql(statement)
            connection.exec_driver_sql("INSERT INTO counted (name) VALUES ('a row: sqlite_sequence has one too')")
        catalog = sqlite_catalog(connection)
        original = snapshot(connection)
    assert replayable(catalog)
    assert snapshot_of_catalog(catalog) == original, differences(original, snapshot_of_catalog(catalog))
    # what it compared: every kind of object (a rebuild that left one out would differ)
    assert {"name_lengths", "named_lengths"} <= set(original["views"])
    assert {"trigger counted_lengths", "trigger counted_touch"} <= set(original["objects"])
    indexes = {index[0] for index in original["tables"]["counted"]["indexes"]}
    assert {"ix_counted_lower_name", "ix_counted_positive"} <= indexes
    assert original["tables"]["counted"]["checks"] and original["tables"]["counted"]["foreign_keys"]


def test_a_virtual_table_is_not_rebuilt_from_the_catalog(database_url, engine, dialect):
    if dialect != "sqlite":
        pytest.skip("virtual tables are SQLite's")
    with engine.connect() as connection:
        with connection.begin():
            if "fts5" not in connection.exec_driver_sql("SELECT name FROM pragma_module_list").scalars().all():
                pytest.skip("this SQLite library was built without FTS5")
            connection.exec_driver_sql("CREATE VIRTUAL TABLE searched USING fts5(body)")
        assert not replayable(sqlite_catalog(connection))


def test_compared_finds_equal_schemas_equal_and_different_ones_different(two_at_head):
    """Two databases upgraded to head are equal. Once one has another index, they differ,
    and ``differences()`` names it. On SQLite, the equal pair is told equal by their
    ``sqlite_master`` rows alone."""
    a, b = two_at_head
    first, second = compared(a, b)
    assert first == second, differences(first, second)
    if a.dialect.name == "sqlite":
        assert isinstance(first, tuple)  # the catalog rows, no reflection
    a.rollback(), b.rollback()  # what reflecting began (PostgreSQL, MariaDB)
    with b.begin():
        b.execute(text("CREATE INDEX ix_customer_name_compared ON customer (name)"))
    first, second = compared(a, b)
    assert first != second
    changed = differences(first, second)
    assert any("ix_customer_name_compared" in line for line in changed), changed


def reversed_order(a: str, b: str) -> int:
    return (a < b) - (a > b)


def test_a_schema_using_the_connection_s_own_collation_and_function_is_rebuilt(database_url, engine, dialect):
    """SQLite checks that a collation or function named in a CREATE statement exists; the
    rebuild gives it a stand-in for those the database's connection registered."""
    if dialect != "sqlite":
        pytest.skip("sqlite_master is SQLite's")

    @event.listens_for(engine, "connect")
    def register(dbapi_connection, _record):
        dbapi_connection.create_collation("reversed", reversed_order)
        dbapi_connection.create_function("initials", 1, lambda name: name[:1], deterministic=True)

    with engine.connect() as connection:
        with connection.begin():
            connection.exec_driver_sql(
                "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT COLLATE reversed,"
                " initial TEXT GENERATED ALWAYS AS (initials(name)), CHECK (initials(name) <> 'x'))"
            )
            connection.exec_driver_sql("CREATE INDEX ix_people_initials ON people (initials(name))")
            connection.exec_driver_sql("CREATE INDEX ix_people_name ON people (name COLLATE reversed)")
        catalog = sqlite_catalog(connection)
        original = snapshot(connection)
    assert snapshot_of_catalog(catalog) == original, differences(original, snapshot_of_catalog(catalog))
    assert "ix_people_initials" in {index[0] for index in original["tables"]["people"]["indexes"]}


NO_EXPRESSIONS = "MariaDB has no indexes on expressions (MySQL 8 writes them ((so)): not covered)"
SAME_NAME_OTHER_TERMS = {
    # what differs: (the two indexes, why a database cannot show it)
    "expression": (("(lower(name))", "(upper(name))"), {"mysql": NO_EXPRESSIONS}),
    "partial": (
        ("(name) WHERE order_count > 0", "(name) WHERE order_count > 1"),
        {"mysql": "MariaDB and MySQL have no partial indexes"},
    ),
    "sorting": (("(name ASC)", "(name DESC)"), {"mysql": "SQLAlchemy does not reflect the order of MariaDB's indexes"}),
}


@pytest.mark.parametrize("differs", list(SAME_NAME_OTHER_TERMS))
def test_the_same_index_on_other_terms_is_another_index(two_at_head, dialect, differs):
    """Same name, same table, another expression, WHERE or order: the two schemas differ."""
    terms, cannot = SAME_NAME_OTHER_TERMS[differs]
    if dialect in cannot:
        pytest.skip(cannot[dialect])
    for connection, term in zip(two_at_head, terms, strict=True):
        with connection.begin():
            connection.execute(text(f"CREATE INDEX ix_customer_probe ON customer {term}"))
    first, second = compared(*two_at_head)
    changed = differences(first, second)
    assert first != second and any("ix_customer_probe" in line for line in changed), changed
