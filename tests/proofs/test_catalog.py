"""The stairway's captures see every kind of object a downgrade can leave behind or change, on
each database: on PostgreSQL and MariaDB from the catalog alone (migrations/testing/catalog.py,
no reflection), on SQLite from ``sqlite_master`` and the schema rebuilt from it."""

from __future__ import annotations

import pytest

from migrations.testing.catalog import Catalog
from migrations.testing.fixtures import project_config
from migrations.testing.stairway import Migrator, differences
from proofs.test_stairway import HEAD, faulty_step, migrator_on, revision_source

SERVERS = ("postgresql", "mysql")
ALL = ("sqlite", *SERVERS)
PG_TRIGGER_FUNCTION = "CREATE FUNCTION probe_touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'"
# The table the changes below are made to (the example history's have views on them).
PROBE_BASE = "CREATE TABLE probe_base (id INTEGER PRIMARY KEY, name VARCHAR(100), amount INTEGER)"
# kind: ({dialect: statements that leave it behind or change it}, what the line of differences() names)
LEFTOVERS = {
    "table": (dict.fromkeys(ALL, ["CREATE TABLE probe_table (id INTEGER PRIMARY KEY)"]), "table probe_table"),
    "column": (dict.fromkeys(ALL, ["ALTER TABLE probe_base ADD COLUMN probe_column INTEGER"]), "probe_column"),
    "index": (dict.fromkeys(ALL, ["CREATE INDEX ix_probe ON probe_base (amount)"]), "ix_probe"),
    "unique constraint": (
        {
            "sqlite": ["CREATE UNIQUE INDEX uq_probe ON probe_base (amount)"],
            **dict.fromkeys(SERVERS, ["ALTER TABLE probe_base ADD CONSTRAINT uq_probe UNIQUE (amount)"]),
        },
        "uq_probe",
    ),
    "check constraint": (
        dict.fromkeys(SERVERS, ["ALTER TABLE probe_base ADD CONSTRAINT ck_probe CHECK (amount >= 0)"]),
        "ck_probe",
    ),
    "foreign key": (
        dict.fromkeys(
            SERVERS,
            ["ALTER TABLE probe_base ADD CONSTRAINT fk_probe FOREIGN KEY (amount) REFERENCES probe_base (id)"],
        ),
        "fk_probe",
    ),
    "server default": (
        dict.fromkeys(SERVERS, ["ALTER TABLE probe_base ALTER COLUMN amount SET DEFAULT 7"]),
        "table probe_base columns",
    ),
    "column type": (
        {
            "postgresql": ["ALTER TABLE probe_base ALTER COLUMN name TYPE VARCHAR(300)"],
            "mysql": ["ALTER TABLE probe_base MODIFY name VARCHAR(300)"],
        },
        "table probe_base columns",
    ),
    "not null": (
        {
            "postgresql": ["ALTER TABLE probe_base ALTER COLUMN name SET NOT NULL"],
            "mysql": ["ALTER TABLE probe_base MODIFY name VARCHAR(100) NOT NULL"],
        },
        "table probe_base columns",
    ),
    "table comment": (
        {
            "postgresql": ["COMMENT ON TABLE probe_base IS 'probe'"],
            "mysql": ["ALTER TABLE probe_base COMMENT 'probe'"],
        },
        "table probe_base comment",
    ),
    "view": (dict.fromkeys(ALL, ["CREATE VIEW probe_view AS SELECT 1 AS one"]), "probe_view"),
    "function": (
        {
            "postgresql": ["CREATE FUNCTION probe_function() RETURNS integer LANGUAGE sql AS 'SELECT 1'"],
            "mysql": ["CREATE FUNCTION probe_function() RETURNS INT DETERMINISTIC RETURN 1"],
        },
        "function probe_function",
    ),
    "procedure": (
        {
            "postgresql": ["CREATE PROCEDURE probe_procedure() LANGUAGE sql AS 'SELECT 1'"],
            "mysql": ["CREATE PROCEDURE probe_procedure() SELECT 1"],
        },
        "procedure probe_procedure",
    ),
    "trigger": (
        {
            "sqlite": ["CREATE TRIGGER probe_trigger AFTER UPDATE ON probe_base BEGIN SELECT 1; END"],
            "postgresql": [
                PG_TRIGGER_FUNCTION,
                "CREATE TRIGGER probe_trigger BEFORE UPDATE ON probe_base FOR EACH ROW EXECUTE FUNCTION probe_touch()",
            ],
            "mysql": ["CREATE TRIGGER probe_trigger BEFORE UPDATE ON probe_base FOR EACH ROW SET NEW.name = NEW.name"],
        },
        "trigger probe_trigger",
    ),
    "sequence": (dict.fromkeys(SERVERS, ["CREATE SEQUENCE probe_sequence"]), "probe_sequence"),
    "enum type": ({"postgresql": ["CREATE TYPE probe_mood AS ENUM ('happy', 'sad')"]}, "probe_mood"),
    "domain type": ({"postgresql": ["CREATE DOMAIN probe_domain AS integer CHECK (VALUE > 0)"]}, "probe_domain"),
}
DROPPED = 'op.create_table("dropped", sa.Column("id", sa.Integer(), primary_key=True))'
STANDALONE = ("table", "view", "function", "procedure", "sequence", "enum type", "domain type")  # not on probe_base


@pytest.mark.parametrize("kind", list(LEFTOVERS))
def test_a_downgrade_that_leaves_each_kind_of_object_behind_is_seen(database_url, engine, dialect, kind):
    """At head (and a table of the test's own), capture; run what a faulty downgrade would
    leave; capture and compare, as the stairway does: the two differ, and ``differences()``
    names what was left or changed."""
    statements, named = LEFTOVERS[kind]
    if dialect not in statements:
        pytest.skip(f"{kind}: not on {dialect}, or not one to add to an existing table there")
    config = project_config()
    config.attributes["database_url"] = database_url
    with engine.connect() as connection:
        migrator = Migrator(config, connection)
        migrator.upgrade("heads")
        with connection.begin():
            connection.exec_driver_sql(PROBE_BASE)
        before = migrator.capture()
        if dialect != "sqlite":  # the catalog, not a snapshot: nothing reflected
            assert isinstance(before.catalog, Catalog) and before.snapshot is None
        with connection.begin():
            for statement in statements[dialect]:
                connection.exec_driver_sql(statement)
        was, now = migrator.compare(before, migrator.capture(keep=False))
    changed = differences(was, now)
    assert was != now and any(named in line for line in changed), changed


def test_the_stairway_names_every_object_a_downgrade_left_behind(project_copy, database_url, engine, dialect):
    """One revision makes an object of each kind the database has (on a table of its own);
    its downgrade drops only that table: the stairway's step names every one of them."""
    kinds = [kind for kind in STANDALONE if dialect in LEFTOVERS[kind][0]]
    upgrades = [f"op.execute({statement!r})" for kind in kinds for statement in LEFTOVERS[kind][0][dialect]]
    leaky = revision_source(
        "ca7a00000001",
        HEAD,
        schema_upgrades="\n".join([DROPPED, *upgrades]),
        schema_downgrades='op.drop_table("dropped")',
    )
    with migrator_on(project_copy, database_url, engine, leaky) as migrator:
        step = faulty_step(migrator, "ca7a00000001")
    changed = "\n".join(differences(step.before, step.after_downgrade))
    assert all(LEFTOVERS[kind][1] in changed for kind in kinds), changed
    assert len(kinds) >= 2
