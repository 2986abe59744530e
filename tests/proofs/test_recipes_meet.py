"""Recipes that meet: a view made only in a revision (recipe 4, the cookbook's own way) with
recipe 1 (create_db.py), recipe 5 (autogenerate, ``alembic check``), ``--sql`` and the
migration suite.

The example history makes ``customer_view`` (and, on the servers, ``add_customer_sp``) with
``op.create_view`` / ``op.replace_view``; the example models also declare them. Here the
models declare nothing but their tables, as for a team that writes its views in revisions
only: ``alembic check`` must find nothing to drop, and create_db.py must build the
history's objects (create_db ≡ upgrade head).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from sqlalchemy import inspect, text

from migrations.settings import make_engine
from proofs.helpers import PROJECT, alembic_cli, run_in_project
from proofs.test_stairway import HEAD, revision_source
from proofs.test_walk import run_suite


def tables_only(project: Path) -> Path:
    """The project's models without their declared views and functions."""
    models = next(project.glob("*/models.py"))
    source = models.read_text()
    models.write_text(source[: source.index("customer_view = View(")])
    return models


def views_and_routines(url) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            found = [f"view {name}" for name in inspect(connection).get_view_names()]
            if connection.dialect.name == "postgresql":
                query = "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
            elif connection.dialect.name == "mysql":
                query = "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()"
            else:
                query = None
            if query:
                found += [f"routine {name}" for name in connection.execute(text(query)).scalars()]
    finally:
        engine.dispose()
    return sorted(found)


def test_a_view_made_only_in_revisions_passes_check_and_create_db_builds_it(
    project_copy, database_url, new_database, server, dialect, tmp_path
):
    tables_only(project_copy)
    migrate = alembic_cli(database_url, "upgrade", "head", cwd=project_copy)
    assert migrate.returncode == 0, migrate.stderr
    check = alembic_cli(database_url, "check", cwd=project_copy)
    assert check.returncode == 0, check.stdout + check.stderr  # was: remove_view customer_view
    written = alembic_cli(database_url, "revision", "--autogenerate", "-m", "nothing", cwd=project_copy)
    assert "no revision file written" in written.stdout, written.stdout + written.stderr

    built = new_database()
    result = run_in_project(built, "create_db.py", cwd=project_copy)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr, result.stderr
    assert views_and_routines(built) == views_and_routines(database_url)
    assert "view customer_view" in views_and_routines(built)
    expected = "1 table, 1 view;" if dialect == "sqlite" else "1 table, 1 view, 1 function;"
    assert expected in result.stdout, result.stdout
    sql = run_in_project(new_database(), "create_db.py", "--sql", cwd=project_copy)
    assert sql.returncode == 0 and re.search(r"CREATE (OR REPLACE )?VIEW customer_view", sql.stdout), sql.stderr

    # The baked suite: create_db ≡ upgrade head, models ≡ head.
    shutil.copytree(PROJECT / "tests", project_copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    outcomes = run_suite(project_copy, server.render_as_string(hide_password=False), tmp_path)
    assert all(said is None for said in outcomes.values()), outcomes


def test_with_drop_undeclared_a_view_made_only_in_revisions_is_the_apps_to_drop(project_copy, database_url):
    models = tables_only(project_copy)
    source = models.read_text()
    declare = "declare_replaceable_objects(MetaData(naming_convention=NAMING_CONVENTION))"
    models.write_text(source.replace(declare, declare.replace("))", "), drop_undeclared=True)")))
    assert alembic_cli(database_url, "upgrade", "head", cwd=project_copy).returncode == 0
    check = alembic_cli(database_url, "check", cwd=project_copy)
    assert check.returncode != 0 and "remove_view" in check.stdout + check.stderr


def test_a_revision_that_needs_a_database_to_make_its_view_is_named_and_left_out(project_copy, new_database, dialect):
    """create_db.py replays the history's op.create_view & co. without a database: a revision
    that reads the database first cannot be replayed. The build goes on without its view and
    says so (the suite's create_db ≡ upgrade head then names what is missing)."""
    tables_only(project_copy)
    reads = (
        'op.get_bind().execute(sa.text("SELECT 1")).scalar_one()\n'
        'op.create_view(ReplaceableObject("probe_view", "SELECT name FROM customer"))'
    )
    source = revision_source("r1", HEAD, reads, 'op.drop_view(ReplaceableObject("probe_view", ""))')
    source = source.replace(
        "import sqlalchemy as sa\n", "import sqlalchemy as sa\n\nfrom migrations.replaceable import ReplaceableObject\n"
    )
    (project_copy / "migrations" / "versions" / "probe_0.py").write_text(source)
    built = new_database()
    result = run_in_project(built, "create_db.py", cwd=project_copy)
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("create_db.py: warning:")]
    assert len(warned) == 1 and "revision r1 (AttributeError" in warned[0], result.stderr
    found = views_and_routines(built)
    assert "view customer_view" in found and "view probe_view" not in found, found
