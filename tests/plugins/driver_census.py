"""A pytest plugin for a baked project's suite run on an async URL (tests/test_baked_async_suites.py):
counts, by the URL's driver, the connections that its process made to a database on a server or in a
file (SQLite's in-memory rebuilds aside), and writes the counts as JSON to ``$DRIVER_CENSUS``
when the run ends. The processes the suite starts (create_db.py, the alembic command) are
not counted: they are given the URL itself."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from sqlalchemy import Connection, Engine, event

CONNECTIONS: Counter[str] = Counter()


@event.listens_for(Engine, "engine_connect")
def count(connection: Connection) -> None:
    url = connection.engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return
    CONNECTIONS[url.get_driver_name()] += 1  # the URL's: psycopg_async's dialect says psycopg


def pytest_unconfigure(config) -> None:
    Path(os.environ["DRIVER_CENSUS"]).write_text(json.dumps(CONNECTIONS))
