"""Several independent histories in one project (the living cookbook's "Run multiple Alembic
environments from one .ini file", migrations/environments.py): a second environment as the
baked README says to add one, with its own folder, models, version table and URL. Each is
migrated with ``alembic --name``, built with ``create_db.py --name``, and the baked
migration suite walks both, naming a fault of the second under its name."""

from __future__ import annotations

import configparser
import shutil
from pathlib import Path

from sqlalchemy import inspect, text

from migrations.settings import make_engine
from proofs.helpers import PROJECT, alembic_cli, run_in_project
from proofs.test_stairway import revision_source
from proofs.test_walk import run_suite

AUDIT_MODELS = '''"""The audit history's models."""

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class AuditBase(DeclarativeBase):
    metadata = MetaData(naming_convention={"pk": "pk_%(table_name)s", "ix": "ix_%(column_0_label)s"})


class AuditEvent(AuditBase):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    what: Mapped[str] = mapped_column(String(100))


metadata = AuditBase.metadata
'''
ENV_PY = '''"""The audit environment: the project's env.py, run for this section of alembic.ini."""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "migrations" / "env.py"))
'''
CREATE_EVENT = (
    'op.create_table("audit_event", sa.Column("id", sa.Integer(), nullable=False),'
    ' sa.Column("what", sa.String(100), nullable=False), sa.PrimaryKeyConstraint("id", name="pk_audit_event"))'
)


def add_audit_environment(project: Path, faulty: bool = False) -> None:
    """What the baked README's steps do: a folder with env.py, script.py.mako and versions/,
    the models, and an [audit] section copied from [alembic] with its own settings."""
    package = next(project.glob("*/models.py")).parent.name
    (project / package / "audit_models.py").write_text(AUDIT_MODELS)
    folder = project / "audit_migrations"
    (folder / "versions").mkdir(parents=True)
    (folder / "env.py").write_text(ENV_PY)
    shutil.copy2(project / "migrations" / "script.py.mako", folder / "script.py.mako")
    downgrade = "pass" if faulty else 'op.drop_table("audit_event")'
    (folder / "versions" / "audit_1.py").write_text(revision_source("au1", None, CREATE_EVENT, downgrade))
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(project / "alembic.ini")
    parser["audit"] = {
        **{key: value for key, value in parser["alembic"].items() if key not in parser.defaults()},
        "script_location": "%(here)s/audit_migrations",
        "version_table": "alembic_version_audit",
        "target_metadata": f"{package}.audit_models:metadata",
        "autogenerate_keep_unknown_tables": "true",  # the main history's tables, in a database they share
    }
    parser["audit"].pop("sqlalchemy.url", None)  # no URL of its own: the main database's
    with (project / "alembic.ini").open("w") as ini:
        parser.write(ini)


def audit_cli(url, *args: str, cwd: Path):
    """``alembic --name audit ...`` on ``url``, given as the audit environment's own variable."""
    return run_in_project(url, "-m", "alembic", "--name", "audit", *args, cwd=cwd, AUDIT_DATABASE_URL=str(url))


def test_two_histories_share_a_database_each_with_its_own_version_table(project_copy, database_url, new_database):
    add_audit_environment(project_copy)
    url = database_url.render_as_string(hide_password=False)
    # Its URL is never the main one's unless given: DATABASE_URL alone is refused, nothing made.
    alone = alembic_cli(database_url, "--name", "audit", "upgrade", "head", cwd=project_copy)
    said = (alone.stdout + alone.stderr).strip().splitlines()
    assert alone.returncode != 0 and said[-1] == (
        "FAILED: No database URL: set AUDIT_DATABASE_URL or sqlalchemy.url in alembic.ini's [audit]."
    ), said
    assert alembic_cli(database_url, "upgrade", "head", cwd=project_copy).returncode == 0
    result = audit_cli(url, "upgrade", "head", cwd=project_copy)
    assert result.returncode == 0, result.stderr
    engine = make_engine(database_url)
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        assert {"customer", "audit_event", "alembic_version", "alembic_version_audit"} <= tables, tables
        assert connection.execute(text("SELECT version_num FROM alembic_version_audit")).scalar() == "au1"
    engine.dispose()
    check = audit_cli(url, "check", cwd=project_copy)
    assert check.returncode == 0, check.stdout + check.stderr  # the main history's tables left alone
    down = audit_cli(url, "downgrade", "base", cwd=project_copy)
    assert down.returncode == 0, down.stderr
    with make_engine(database_url).connect() as connection:  # the main history untouched
        tables = set(inspect(connection).get_table_names())
        assert "audit_event" not in tables and "customer" in tables, tables
    built = new_database()  # a database of its own
    own = built.render_as_string(hide_password=False)
    result = run_in_project(built, "create_db.py", "--name", "audit", cwd=project_copy, AUDIT_DATABASE_URL=own)
    assert result.returncode == 0, result.stderr
    with make_engine(built).connect() as connection:
        assert set(inspect(connection).get_table_names()) == {"audit_event", "alembic_version_audit"}


def test_the_migration_suite_walks_every_environment(project_copy, server, tmp_path):
    add_audit_environment(project_copy, faulty=True)
    shutil.copytree(PROJECT / "tests", project_copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    outcomes = run_suite(project_copy, server.render_as_string(hide_password=False), tmp_path)
    assert outcomes["test_each_downgrade_undoes_its_upgrade[alembic]"] is None, outcomes
    said = outcomes["test_each_downgrade_undoes_its_upgrade[audit]"]
    assert said is not None and "au1 (au1): its downgrade did nothing" in said, said
    for name in ("test_the_models_match_the_schema_at_head", "test_create_db_builds_what_upgrade_head_builds"):
        for section in ("alembic", "audit"):
            assert outcomes[f"{name}[{section}]"] is None, (name, section, outcomes[f"{name}[{section}]"])
