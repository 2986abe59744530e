"""The migration suite's machinery, kept beside the migrations so it travels with them.

- ``fixtures``: pytest fixtures that give each test an empty database on the server under
  test (``TEST_DATABASE_URL``, else alembic.ini's URL);
- ``stairway``: the stairway walk, with ``migrator`` (Alembic's commands in-process on one
  connection) and ``steps`` (one revision's step, and what it says when faulty);
- ``ahead``: PostgreSQL test databases made ahead and dropped behind, in threads;
- ``head_build``: the project's Alembic Config, and create_db()'s build of the database at head;
- ``schema``: a comparable picture of a database's schema;
- ``connections``: connections through the URL's own driver; on an async URL, an
  AsyncConnection that the sync machinery uses through ``run_sync``;
- ``collector``: garbage-collector settings that keep a long history's suite fast.

tests/test_migrations.py uses them; nothing in the application imports them.
"""
