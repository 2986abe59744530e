"""migrations/testing/schema.py: SQLite's schema rebuilt from its catalog reflects the same,
``compared()`` tells two schemas apart, on every database, and the features of real schemas
(unnamed constraints beside named ones, computed columns, DESC and expression indexes,
foreign key actions, comments, server defaults, enum and domain types) are pictured, by
reflection and by the servers' catalogs (migrations/testing/catalog.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, event, text

from migrations.settings import make_engine
from migrations.testing.catalog import catalog, pictured
from migrations.testing.fixtures import project_config
from migrations.testing.schema import compared, replayable, snapshot, snapshot_of_catalog, sqlite_catalog
from migrations.testing.stairway import Migrator, differences

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
    config = project_config()
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
    "sorting": (("(name ASC)", "(name DESC)"), {}),  # MariaDB: its catalog has it, SQLAlchemy does not reflect it
}


@pytest.mark.parametrize("differs", list(SAME_NAME_OTHER_TERMS))
def test_the_same_index_on_other_terms_is_another_index(two_at_head, dialect, differs):
    """Same name, same table, another expression, WHERE or order: the two schemas differ."""
    terms, cannot = SAME_NAME_OTHER_TERMS[differs]
    if dialect in cannot:
        pytest.skip(cannot[dialect])
    if differs == "sorting" and dialect == "mysql" and not two_at_head[0].dialect.is_mariadb:
        pytest.skip("SQLAlchemy does not reflect the order of MySQL's indexes (catalog.py reads MariaDB's only)")
    for connection, term in zip(two_at_head, terms, strict=True):
        with connection.begin():
            connection.execute(text(f"CREATE INDEX ix_customer_probe ON customer {term}"))
    first, second = compared(*two_at_head)
    changed = differences(first, second)
    assert first != second and any("ix_customer_probe" in line for line in changed), changed


# --- Real schemas: each feature, where the database has it, told apart and told equal ---------


def probe(extra: str, dialect: str) -> str:
    """The probe table, with ``extra`` after its columns; after "|", MariaDB's table options."""
    columns, _, options = extra.partition("|")
    sql = f"CREATE TABLE probe (id INTEGER PRIMARY KEY, parent_id INTEGER, a INTEGER, name VARCHAR(20){columns})"
    return sql + options if dialect == "mysql" else sql


PARENT = "CREATE TABLE parent (id INTEGER PRIMARY KEY, code INTEGER UNIQUE)"
FK = ", {}FOREIGN KEY (parent_id) REFERENCES parent (id)"
# feature: {dialect ("*": any other): (the base's extra, what the variant replaces in it, by what)}.
# A string: why the database has no such feature. PostgreSQL's own statements: POSTGRESQL_EXTRAS.
REAL_SCHEMAS = {
    "unnamed-check-beside-named": {"*": (", CONSTRAINT ck_probe_a CHECK (a < 100), CHECK (a > 0)", "> 0", "> 1")},
    "unnamed-unique-beside-named": {"*": (", CONSTRAINT uq_probe_a UNIQUE (a), UNIQUE (name)", "name)", "parent_id)")},
    "unnamed-foreign-key-beside-named": {
        "*": (", CONSTRAINT fk_probe_a FOREIGN KEY (a) REFERENCES parent (code)" + FK.format(""), "(id)", "(code)")
    },
    "foreign-key-on-delete": {"*": (FK.format("CONSTRAINT fk_probe "), "(id)", "(id) ON DELETE CASCADE")},
    "foreign-key-on-update": {"*": (FK.format("CONSTRAINT fk_probe ") + " ON UPDATE CASCADE", "CASCADE", "SET NULL")},
    "computed-column": {
        "sqlite": (", twice INTEGER GENERATED ALWAYS AS (a * 2)", "2", "3"),
        "postgresql": (", twice INTEGER GENERATED ALWAYS AS (a * 2) STORED", "2", "3"),
        "mysql": (", twice INTEGER AS (a * 2) VIRTUAL", "2", "3"),
    },
    "server-default": {"*": (", amount INTEGER DEFAULT 0", "0", "1")},
    "column-comment": {
        "sqlite": "SQLite has no comments",
        "postgresql": (", amount INTEGER", "", ""),
        "mysql": (", amount INTEGER COMMENT 'in cents'", "cents", "euros"),
    },
    "table-comment": {
        "sqlite": "SQLite has no comments",
        "postgresql": ("", "", ""),
        "mysql": ("| COMMENT 'probes'", "probes", "other probes"),
    },
    "enum-type": {
        "sqlite": "SQLite has no enum types",
        "postgresql": (", mood probe_mood", "", ""),
        "mysql": (", mood ENUM('happy', 'sad')", "'sad'", "'sad', 'bored'"),
    },
    "domain-type": {"*": "only PostgreSQL has domain types", "postgresql": (", amount probe_positive", "", "")},
    "descending-index": {"*": ("", "", "")},  # the index: INDEXES
    "expression-index": {"*": ("", "", ""), "mysql": NO_EXPRESSIONS},
}
INDEXES = {"descending-index": "(a)", "expression-index": "(lower(name))"}
INDEX_VARIANTS = {"descending-index": ("(a)", "(a DESC)"), "expression-index": ("lower", "upper")}
# PostgreSQL says these with statements of their own: (the base's, what the variant replaces, by what).
POSTGRESQL_EXTRAS = {
    "column-comment": ("COMMENT ON COLUMN probe.amount IS 'in cents'", "cents", "euros"),
    "table-comment": ("COMMENT ON TABLE probe IS 'probes'", "probes", "other probes"),
    "enum-type": ("CREATE TYPE probe_mood AS ENUM ('happy', 'sad')", "'sad'", "'sad', 'bored'"),
    "domain-type": ("CREATE DOMAIN probe_positive AS integer CHECK (VALUE > 0)", "> 0", "> 1"),
}


def variant_of(case: tuple[str, str, str], variant: int) -> str:
    base, old, new = case
    return base.replace(old, new) if variant else base


def build(connection: Connection, feature: str, variant: int) -> None:
    """The probe schema of ``feature`` (variant 0: the base, 1: the variant), in place of any other."""
    dialect = connection.dialect.name
    with connection.begin():
        drops = ["DROP TABLE IF EXISTS probe", "DROP TABLE IF EXISTS parent"]
        if dialect == "postgresql":
            drops += ["DROP TYPE IF EXISTS probe_mood", "DROP DOMAIN IF EXISTS probe_positive"]
        cases = REAL_SCHEMAS[feature]
        statements = [PARENT, probe(variant_of(cases.get(dialect, cases.get("*")), variant), dialect)]
        if feature in INDEXES:
            old, new = INDEX_VARIANTS[feature]
            statements.append(f"CREATE INDEX ix_probe ON probe {variant_of((INDEXES[feature], old, new), variant)}")
        if dialect == "postgresql" and feature in POSTGRESQL_EXTRAS:
            extra = variant_of(POSTGRESQL_EXTRAS[feature], variant)
            statements.insert(0 if extra.startswith("CREATE") else len(statements), extra)
        for statement in drops + statements:
            connection.exec_driver_sql(statement)


def pictures(connection: Connection) -> tuple[dict, dict | None]:
    """The snapshot, and the catalog where the database has one (migrations/testing/catalog.py),
    pictured."""
    try:
        found = catalog(connection)
        return snapshot(connection), None if found is None else pictured(found)
    finally:
        connection.rollback()


@pytest.mark.parametrize("feature", list(REAL_SCHEMAS))
def test_a_real_schema_feature_is_pictured_and_told_apart(engine, dialect, feature):
    """Each feature of a real schema: its snapshot (and on PostgreSQL and MariaDB, its
    catalog) is taken without a crash, differs when only that feature differs, with
    ``differences()`` naming the table or type, and is equal again when the schema is
    built again as it was (nothing that changes on a rebuild is pictured)."""
    case = REAL_SCHEMAS[feature].get(dialect, REAL_SCHEMAS[feature].get("*"))
    if isinstance(case, str):
        pytest.skip(case)
    with engine.connect() as connection:
        states = []
        for variant in (0, 1, 0):
            build(connection, feature, variant)
            states.append(pictures(connection))
    (snapshot_0, catalog_0), (snapshot_1, catalog_1), (snapshot_again, catalog_again) = states
    seen = {"snapshot": (snapshot_0, snapshot_1)}
    if catalog_0 is not None:
        seen["catalog"] = (catalog_0, catalog_1)
    if feature == "descending-index" and dialect == "mysql":
        del seen["snapshot"]  # SQLAlchemy does not reflect the order of MariaDB's indexes: the catalog does
    for name, (base, variant) in seen.items():
        changed = differences(base, variant)
        assert base != variant and changed, f"{name}: {feature} not seen"
        assert all("probe" in line for line in changed), f"{name}: {changed}"
    assert snapshot_again == snapshot_0, differences(snapshot_0, snapshot_again)
    assert catalog_again == catalog_0, differences(catalog_0, catalog_again)
