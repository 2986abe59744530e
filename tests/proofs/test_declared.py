"""Declared objects and autogenerate: add, change and remove a view (and a function, a
trigger, a materialized view where the database has them) in the models, and each time
`alembic revision --autogenerate` writes the right revision, which upgrades and downgrades.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from migrations.settings import make_engine
from proofs.helpers import alembic_cli, run_in_project

BIG_CUSTOMERS = """
big_customers = View("big_customers", metadata, "SELECT name FROM customer_view WHERE order_count > 10")
"""
NEW_OBJECTS = {
    "postgresql": BIG_CUSTOMERS
    + """
customer_counts = MaterializedView("customer_counts", metadata, "SELECT count(*) AS n FROM customer")
touch_customer = Function(
    "touch_customer()",
    metadata,
    "RETURNS trigger AS $$ BEGIN NEW.order_count := coalesce(NEW.order_count, 0); RETURN NEW; END; $$ LANGUAGE plpgsql",
)
customer_touch = Trigger(
    "customer_touch", metadata, "BEFORE INSERT OR UPDATE ON customer FOR EACH ROW EXECUTE FUNCTION touch_customer()"
)
""",
    "mysql": BIG_CUSTOMERS
    + """
customer_touch = Trigger(
    "customer_touch",
    metadata,
    "BEFORE INSERT ON customer FOR EACH ROW SET NEW.order_count = coalesce(NEW.order_count, 0)",
)
""",
    "sqlite": BIG_CUSTOMERS
    + """
customer_touch = Trigger(
    "customer_touch",
    metadata,
    "AFTER INSERT ON customer BEGIN UPDATE customer SET order_count = 0 WHERE id = NEW.id AND order_count IS NULL; END",
)
""",
}
IMPORTS = "from migrations.replaceable import Function, MaterializedView, Trigger, View  # noqa: F811\n"
DECLARE = "declare_replaceable_objects(MetaData(naming_convention=NAMING_CONVENTION))"
OLD_VIEW = "SELECT name, order_count, email FROM customer WHERE order_count > 0"
NEW_VIEW = "SELECT name, order_count FROM customer WHERE order_count > 1"


def autogenerate(url, copy: Path, message: str) -> str:
    versions = copy / "migrations" / "versions"
    before = set(versions.glob("*.py"))
    result = alembic_cli(url, "revision", "--autogenerate", "-m", message, cwd=copy)
    assert result.returncode == 0, result.stdout + result.stderr
    written = set(versions.glob("*.py")) - before
    assert len(written) == 1, result.stdout
    return written.pop().read_text()


def migrate(url, copy: Path, *args: str) -> None:
    result = alembic_cli(url, *args, cwd=copy)
    assert result.returncode == 0, result.stdout + result.stderr


def objects(url) -> dict[str, list[str]]:
    engine = make_engine(url)
    with engine.connect() as connection:
        names = {"views": sorted(inspect(connection).get_view_names())}
        if connection.dialect.name == "sqlite":
            rows = connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        elif connection.dialect.name == "postgresql":
            rows = connection.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
        else:
            rows = connection.execute(
                text("SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = DATABASE()")
            )
        names["triggers"] = sorted(row[0] for row in rows)
    engine.dispose()
    return names


def view_columns(url, view: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as connection:
        columns = [column["name"] for column in inspect(connection).get_columns(view)]
    engine.dispose()
    return columns


def test_add_change_and_remove_declared_objects(project_copy: Path, database_url, dialect):
    models = next(project_copy.glob("*/models.py"))
    migrate(database_url, project_copy, "upgrade", "head")
    original = models.read_text()
    assert DECLARE in original

    # New objects -> create_*; upgrade and downgrade.
    models.write_text(original + IMPORTS + NEW_OBJECTS["mysql" if dialect == "mariadb" else dialect])
    revision = autogenerate(database_url, project_copy, "add objects")
    assert "op.create_view(" in revision and "big_customers" in revision
    assert "op.create_trigger(" in revision
    migrate(database_url, project_copy, "upgrade", "head")
    assert "big_customers" in objects(database_url)["views"]
    assert objects(database_url)["triggers"] == ["customer_touch"]
    migrate(database_url, project_copy, "downgrade", "-1")
    assert objects(database_url) == {"views": ["customer_view"], "triggers": []}
    migrate(database_url, project_copy, "upgrade", "head")

    # A changed view, with another view depending on it -> replace_view; its downgrade restores it.
    models.write_text(models.read_text().replace(OLD_VIEW, NEW_VIEW))
    revision = autogenerate(database_url, project_copy, "change view")
    assert "op.replace_view(" in revision and "replaces=ReplaceableObject(" in revision
    migrate(database_url, project_copy, "upgrade", "head")
    assert view_columns(database_url, "customer_view") == ["name", "order_count"]
    assert "big_customers" in objects(database_url)["views"]
    migrate(database_url, project_copy, "downgrade", "-1")
    assert view_columns(database_url, "customer_view") == ["name", "order_count", "email"]
    assert "big_customers" in objects(database_url)["views"]
    migrate(database_url, project_copy, "upgrade", "head")

    # A removed view: left alone by default (it may be one a revision makes: the history's) ...
    models.write_text(
        models.read_text().replace('big_customers = View("big_customers"', 'big_customers = ("big_customers"')
    )
    result = alembic_cli(database_url, "revision", "--autogenerate", "-m", "nothing", cwd=project_copy)
    assert result.returncode == 0 and "no revision file written" in result.stdout, result.stdout + result.stderr
    # ... and with drop_undeclared=True -> drop_view; its downgrade brings it back.
    models.write_text(models.read_text().replace(DECLARE, DECLARE.replace("))", "), drop_undeclared=True)")))
    revision = autogenerate(database_url, project_copy, "remove view")
    assert "op.drop_view(" in revision and "big_customers" in revision
    migrate(database_url, project_copy, "upgrade", "head")
    assert "big_customers" not in objects(database_url)["views"]
    migrate(database_url, project_copy, "downgrade", "-1")
    assert "big_customers" in objects(database_url)["views"]
    migrate(database_url, project_copy, "upgrade", "head")

    # Up to date: nothing to write.
    result = alembic_cli(database_url, "revision", "--autogenerate", "-m", "nothing", cwd=project_copy)
    assert result.returncode == 0 and "no revision file written" in result.stdout, result.stdout + result.stderr


def test_a_changed_function_is_replaced_and_still_works(project_copy: Path, database_url, dialect):
    if dialect == "sqlite":
        pytest.skip("SQLite has no stored functions")
    models = next(project_copy.glob("*/models.py"))
    migrate(database_url, project_copy, "upgrade", "head")
    source = models.read_text()
    changed = source.replace(
        "VALUES (in_name, in_order_count, in_email)", "VALUES (upper(in_name), in_order_count, in_email)"
    )
    assert changed != source
    models.write_text(changed)
    revision = autogenerate(database_url, project_copy, "shout names")
    assert "op.replace_sp(" in revision
    migrate(database_url, project_copy, "upgrade", "head")
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("SELECT add_customer_sp('ann', 1, 'a@example.com')"))
        assert connection.execute(text("SELECT name FROM customer")).scalar_one() == "ANN"
    migrate(database_url, project_copy, "downgrade", "-1")
    with engine.begin() as connection:
        connection.execute(text("SELECT add_customer_sp('bob', 1, 'b@example.com')"))
        assert connection.execute(text("SELECT name FROM customer ORDER BY id")).scalars().all() == ["ANN", "bob"]
    engine.dispose()


def test_after_pruning_the_history_a_replaced_view_still_downgrades(project_copy: Path, database_url, new_database):
    """Recipe 1's pruning: every database is past the old revisions, so their files are
    deleted and the earliest one left becomes the base. An autogenerated replace_view keeps
    the old definition in its own file, so its downgrade still works without them; and
    create_db.py builds a new database stamped at the pruned history's head."""
    models = next(project_copy.glob("*/models.py"))
    versions = project_copy / "migrations" / "versions"
    old_files = set(versions.glob("*.py"))
    migrate(database_url, project_copy, "upgrade", "head")
    models.write_text(models.read_text().replace(OLD_VIEW, NEW_VIEW))
    autogenerate(database_url, project_copy, "change view")
    migrate(database_url, project_copy, "upgrade", "head")

    (kept,) = set(versions.glob("*.py")) - old_files
    for old in old_files:
        old.unlink()
    source = kept.read_text()
    pruned = source.replace("down_revision: str | Sequence[str] | None = '199028bf9856'", "down_revision = None")
    pruned = pruned.replace('down_revision: str | Sequence[str] | None = "199028bf9856"', "down_revision = None")
    assert pruned != source, source
    kept.write_text(pruned)

    result = alembic_cli(database_url, "check", cwd=project_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    migrate(database_url, project_copy, "downgrade", "-1")  # to the new base: the old view is back
    assert view_columns(database_url, "customer_view") == ["name", "order_count", "email"]
    migrate(database_url, project_copy, "upgrade", "head")
    assert view_columns(database_url, "customer_view") == ["name", "order_count"]

    fresh = new_database()
    result = alembic_cli(fresh, "current", cwd=project_copy)  # the pruned history loads
    assert result.returncode == 0, result.stdout + result.stderr
    result = run_in_project(fresh, "create_db.py", cwd=project_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert view_columns(fresh, "customer_view") == ["name", "order_count"]


def test_autogenerate_on_an_empty_database_writes_the_tables_and_the_views_on_them(project_copy, database_url):
    """With no history yet (the user deleted the example's), the declared view's table does
    not exist when autogenerate renders the view: the revision creates both, in order."""
    for revision in (project_copy / "migrations" / "versions").glob("*.py"):
        revision.unlink()
    made = alembic_cli(database_url, "revision", "--autogenerate", "-m", "first", cwd=project_copy)
    assert made.returncode == 0, made.stdout + made.stderr
    source = next((project_copy / "migrations" / "versions").glob("*_first.py")).read_text()
    assert source.index('op.create_table(\n        "customer"') < source.index("op.create_view(")
    for command in (["upgrade", "head"], ["check"], ["downgrade", "base"]):
        result = alembic_cli(database_url, *command, cwd=project_copy)
        assert result.returncode == 0, (command, result.stdout + result.stderr)


LONG_VIEW = (
    "SELECT customer.name AS customer_name, customer.order_count AS number_of_orders, "
    "customer.email AS email_address FROM customer WHERE customer.order_count > 0 "
    "AND customer.email IS NOT NULL AND customer.name IS NOT NULL ORDER BY customer.name"
)


def test_a_long_definition_is_written_in_lines_the_linter_accepts(project_copy: Path, database_url):
    """A view's SQL of 240 characters on one line: the autogenerated revision cuts it into
    strings (ruff cannot wrap one), within the project's line length, and the view built
    from it is the declared one: nothing left to autogenerate."""
    models = next(project_copy.glob("*/models.py"))
    migrate(database_url, project_copy, "upgrade", "head")
    models.write_text(models.read_text() + IMPORTS + f'long_probe = View("long_probe", metadata, "{LONG_VIEW}")\n')
    revision = autogenerate(database_url, project_copy, "long view")
    assert "op.create_view(" in revision and "long_probe" in revision
    (written,) = (project_copy / "migrations" / "versions").glob("*_long_view.py")
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "E501", str(written)],
        cwd=project_copy,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + revision
    migrate(database_url, project_copy, "upgrade", "head")
    result = alembic_cli(database_url, "check", cwd=project_copy)
    assert result.returncode == 0, result.stdout + result.stderr
