"""Fixtures for this project's tests: each test that asks for ``database_url``, ``engine``
or ``alembic_config`` gets an empty database of its own on the server under test
(``TEST_DATABASE_URL``, else alembic.ini's ``sqlalchemy.url``; never ``DATABASE_URL``).
See migrations/testing/fixtures.py.
"""

# First: the collector settings apply to what the imports after them make.
from migrations.testing.collector import pytest_collection, pytest_configure  # noqa: F401
from migrations.testing.fixtures import alembic_config, database_url, dialect, engine, new_database, server  # noqa: F401
