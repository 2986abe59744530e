"""Recipe 2, conditional migration elements: data steps run only when asked for."""

from __future__ import annotations

import argparse
import io
import shutil

import pytest
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Engine, inspect, text

from migrations.testing.fixtures import project_config
from proofs.helpers import PROJECT, alembic_cli
from proofs.test_stairway import HEAD, revision_source
from proofs.test_walk import run_suite


def customers(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM customer")).scalar_one()


def with_x(config: Config, *x: str) -> Config:
    config.cmd_opts = argparse.Namespace(x=list(x))  # what `alembic -x ...` sets
    return config


def test_data_steps_do_not_run_by_default(alembic_config, engine):
    command.upgrade(alembic_config, "head")
    assert customers(engine) == 0


@pytest.mark.parametrize("word", ["true", "YES", "On", "1"])
def test_data_steps_run_with_a_true_x_argument(alembic_config, engine, word):
    command.upgrade(with_x(alembic_config, f"data={word}"), "head")
    assert customers(engine) == 3


@pytest.mark.parametrize("word", ["false", "No", "OFF", "0"])
def test_data_steps_do_not_run_with_a_false_x_argument(alembic_config, engine, word):
    command.upgrade(with_x(alembic_config, f"data={word}"), "head")
    assert customers(engine) == 0


def test_data_steps_run_with_the_config_attribute(alembic_config, engine):
    alembic_config.attributes["data"] = True
    command.upgrade(alembic_config, "head")
    assert customers(engine) == 3


def test_cli_runs_data_steps_and_the_view_shows_them(database_url, engine):
    result = alembic_cli(database_url, "-x", "data=true", "upgrade", "head")
    assert result.returncode == 0, result.stderr
    with engine.connect() as connection:
        names = connection.execute(text("SELECT name FROM customer_view ORDER BY name")).scalars().all()
    assert names == ["data 1", "data 3"]


def test_a_bad_x_value_fails_before_any_ddl(database_url, engine):
    result = alembic_cli(database_url, "-x", "data=maybe", "upgrade", "head")
    assert result.returncode != 0
    assert "-x data='maybe' is not a yes/no value" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert inspect(engine).get_table_names() == []


def test_a_non_boolean_attribute_is_an_error(alembic_config, engine):
    alembic_config.attributes["data"] = "yes"
    with pytest.raises(CommandError, match="set it to True or False"):
        command.upgrade(alembic_config, "head")
    assert inspect(engine).get_table_names() == []


def test_downgrade_runs_data_steps_before_schema_steps(database_url):
    buffer = io.StringIO()
    config = with_x(project_config(output_buffer=buffer), "data=true")
    config.attributes["database_url"] = database_url
    command.downgrade(config, "3ab8b2dfb055:base", sql=True)
    sql = buffer.getvalue()
    assert sql.index("DELETE FROM customer") < sql.index("DROP TABLE customer")


def test_the_suite_names_a_data_step_that_changes_the_schema(project_copy, server, tmp_path):
    """Data steps change rows only: a column filled, then made NOT NULL, in data_upgrades()
    passes `alembic -x data=true upgrade head`, but leaves a schema that create_db.py and
    "models == head" (both without data steps) never see. The data walk says so, in one
    message, and nothing else fails because of it."""
    steps = [
        "with op.batch_alter_table('customer') as batch:",
        "    batch.alter_column('nickname', existing_type=sa.String(50), nullable={})",
    ]
    source = revision_source(
        "d1",
        HEAD,
        schema_upgrades="op.add_column('customer', sa.Column('nickname', sa.String(50), nullable=True))",
        schema_downgrades="op.drop_column('customer', 'nickname')",
        data_upgrades="\n".join(["op.execute(\"UPDATE customer SET nickname = 'n'\")", *steps]).format(False),
        data_downgrades="\n".join(steps).format(True),
    )
    (project_copy / "migrations" / "versions" / "probe_d1.py").write_text(source)
    models = next(project_copy.glob("*/models.py"))
    models.write_text(
        models.read_text().replace(
            "    email: Mapped[",
            "    nickname: Mapped[str | None] = mapped_column(String(50))\n    email: Mapped[",
            1,
        )
    )
    shutil.copytree(PROJECT / "tests", project_copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    outcomes = run_suite(project_copy, server.render_as_string(hide_password=False), tmp_path)
    said = outcomes["test_each_downgrade_undoes_its_upgrade_with_the_data_steps"]
    assert said is not None and "the data steps changed the schema" in said, outcomes
    assert "customer" in said and "nickname" in said and "schema_upgrades()" in said
    # The deploy lint reads data steps too: a column made NOT NULL breaks a running version that writes NULL.
    deploy = outcomes.pop("test_the_revisions_are_safe_to_deploy")
    assert deploy is not None and "d1 writes-null" in deploy, deploy
    others = {name: message for name, message in outcomes.items() if "with_the_data_steps" not in name}
    assert all(message is None for message in others.values()), others
