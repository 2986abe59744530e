"""Fixtures for this project's tests: each test that asks for ``database_url``, ``engine``
or ``alembic_config`` gets an empty database of its own on the server under test
(``TEST_DATABASE_URL``, else alembic.ini's ``sqlalchemy.url``; never ``DATABASE_URL``), and
one that asks for ``database_at_head`` a database of its own already at head
(``database_at_head_read_only``: the session's own, for a test that only reads it).
See migrations/testing/fixtures.py.
"""

# First: the collector settings apply to what the imports after them make.
from migrations.testing.collector import pytest_collection, pytest_configure  # noqa: F401
from migrations.testing.fixtures import (  # noqa: F401
    alembic_config,
    database_at_head,
    database_at_head_read_only,
    database_url,
    databases_ahead,
    dialect,
    engine,
    head_template,
    head_template_first,
    new_database,
    new_database_at_head,
    server,
)
