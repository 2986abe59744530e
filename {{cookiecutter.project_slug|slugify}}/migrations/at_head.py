"""The living cookbook's "Test current database revision is at head(s)", for the application.

Call it at start-up, so that a process never serves from a database its code does not match::

    from migrations.at_head import require_at_head

    require_at_head(config)  # a Config (see README: "From an installed wheel"); or a URL with it

It raises ``NotAtHead``, a CommandError with one line naming the database's revisions and the
code's heads, and what to do: behind (``alembic upgrade head``, with ``--name <section>`` for
another environment), ahead (the database was migrated by newer code: deploy it, or
downgrade), or elsewhere (a branch this code does not have). ``at_head_problem(config)``
returns that line, or None. From the command line: ``alembic current --check-heads``
(Alembic 1.17.1+), or ``python -m migrations.cli at_head``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, make_url

from migrations.environments import MAIN, version_table
from migrations.failures import cannot_connect
from migrations.settings import database_url, run_on_connection
from migrations.tenants import refuse_tenant


class NotAtHead(CommandError):
    """The database is not at the code's head revisions."""


def at_head_problem(config: Config, connection: Connection | None = None) -> str | None:
    """None when the database is at every head of the history; else one line saying where it
    is and what to do. ``connection``: read through it (else the config's database)."""
    refuse_tenant(config, "at_head")
    script = ScriptDirectory.from_config(config)
    heads = set(script.get_heads())
    read = partial(_current, version=version_table(config))  # this environment's
    if connection is not None:
        current = set(read(connection))
    else:
        current = set(run_on_connection(database_url(config), read, cannot_connect))
    if current == heads:
        return None
    where = database_url(config).render_as_string(hide_password=True) if connection is None else "the database"
    shown = ", ".join(sorted(current)) or "no revision"
    wanted = ", ".join(sorted(heads))
    known = {revision.revision for revision in script.walk_revisions()}
    unknown = sorted(current - known)
    if unknown:
        return (
            f"{where} is at {shown}, which this code's history does not have (its heads: {wanted}): it was "
            "migrated by newer code; deploy that code, or downgrade the database with it."
        )
    behind = all(any(revision in _ancestors(script, head) for head in heads) for revision in current)
    if behind:
        name = "" if config.config_ini_section == MAIN else f" --name {config.config_ini_section}"
        return f"{where} is at {shown}, behind this code's heads ({wanted}): run `alembic{name} upgrade head`."
    return f"{where} is at {shown}, not at this code's heads ({wanted}): merge or upgrade to them."


def database_revisions(config: Config, url) -> list[str]:
    """The revisions a database stands at (none: empty, or not managed by this history), read
    from this environment's version table."""
    url = make_url(url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).exists():
            return []  # and no file made by asking
    elif url.get_backend_name() != "sqlite" and url.database:
        from migrations.build_cleanup import database_exists
        from migrations.settings import server_url

        exists = partial(database_exists, name=url.database)
        if not run_on_connection(server_url(url), exists, cannot_connect):
            return []
    read = partial(_current, version=version_table(config))
    return sorted(run_on_connection(url, read, cannot_connect))


def require_at_head(config: Config, connection: Connection | None = None) -> None:
    """Raise NotAtHead (one line) unless the database is at every head of the history."""
    problem = at_head_problem(config, connection)
    if problem is not None:
        raise NotAtHead(problem)


def _current(connection: Connection, version: str) -> list[str]:
    outside = not connection.in_transaction()
    try:
        if connection.dialect.name == "sqlite" and outside:  # read without taking our engine's write lock
            return [row[0] for row in _sqlite_versions(connection, version)]
        return list(MigrationContext.configure(connection, opts={"version_table": version}).get_current_heads())
    finally:
        if outside and connection.in_transaction():
            connection.rollback()


def _sqlite_versions(connection: Connection, version: str) -> list[tuple[str]]:
    cursor = connection.connection.dbapi_connection.cursor()  # no BEGIN IMMEDIATE for a read
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (version,))
    if cursor.fetchone() is None:
        return []
    cursor.execute(f"SELECT version_num FROM {version}")  # a checked name (migrations/environments.py)
    return cursor.fetchall()


def _ancestors(script: ScriptDirectory, head: str) -> set[str]:
    return {revision.revision for revision in script.iterate_revisions(head, "base")}
