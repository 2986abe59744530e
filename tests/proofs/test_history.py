"""The history goes base -> head -> base -> head unchanged, through Alembic's own commands,
and writes itself out as SQL (its single head is checked by tests/test_migrations.py)."""

from __future__ import annotations

import io
import re

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from migrations.testing.fixtures import project_config
from migrations.testing.schema import leftovers, snapshot


def test_base_head_base_head_gives_the_same_schema(alembic_config: Config, engine: Engine):
    command.upgrade(alembic_config, "head")
    with engine.connect() as connection:
        at_head = snapshot(connection)
    command.downgrade(alembic_config, "base")
    with engine.connect() as connection:
        assert leftovers(snapshot(connection)) == {}
    command.upgrade(alembic_config, "head")
    with engine.connect() as connection:
        assert snapshot(connection) == at_head
    assert "customer" in at_head["tables"] and "customer_view" in at_head["views"]


def test_offline_mode_writes_the_whole_history_as_sql(database_url):
    buffer = io.StringIO()
    config = project_config(output_buffer=buffer)
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head", sql=True)
    sql = buffer.getvalue()
    assert "CREATE TABLE customer" in sql
    assert len(re.findall(r"CREATE (?:OR REPLACE )?VIEW customer_view", sql)) == 2  # created, then replaced
    assert "199028bf9856" in sql
