"""The project's Alembic Config, and create_db()'s build of the tests' database at head
(see fixtures.HeadTemplate)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.config import Config
from sqlalchemy import URL, Engine, event

from migrations.settings import target_metadata

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def project_config(folder: Path = ALEMBIC_INI.parent, name: str = "alembic", **kwargs: Any) -> Config:
    """The Alembic Config of the project in ``folder`` (this one, or a copy of it): its
    alembic.ini, and ``[tool.alembic]`` in the pyproject.toml beside it, as the ``alembic``
    command reads them there; ``name``: the environment, as ``alembic --name`` (see
    migrations/environments.py)."""
    return Config(folder / "alembic.ini", ini_section=name, toml_file=folder / "pyproject.toml", **kwargs)


# What the build ran that changed nothing: left out of the replay.
READ_ONLY = re.compile(r"\s*(SELECT|SHOW|DESCRIBE|DESC|EXPLAIN)\b", re.IGNORECASE)


@dataclass
class Statement:
    """One statement as SQLAlchemy handed it to the driver, to run again the same way."""

    sql: str
    parameters: Any
    many: bool
    no_parameters: bool


def import_for_build() -> Exception | None:
    """Import what build_at_head() runs, create_db.py and the models (no revision), so that
    it can be done while the database to build is made (a model module may take a few
    hundred milliseconds to import). What the import raised is returned, for the build to
    report as it came (importing a half-imported package again can raise another error)."""
    try:
        from create_db import create_db  # noqa: F401  (beside alembic.ini, on the tests' path)

        target_metadata(project_config())
    except Exception as error:
        return error
    return None


def build_at_head(url: URL) -> list[Statement]:
    """create_db() builds the database of ``url``, as a fixture calls it; on MariaDB, what
    every Engine ran on that database meanwhile, reads left out, is returned (to replay).
    Call it before this process imports any revision: create_all() builds what the models'
    MetaData holds, and a revision module may add to it when imported."""
    from create_db import create_db  # beside alembic.ini, on the tests' path

    statements: list[Statement] = []

    def record(connection, _cursor, sql, parameters, context, many) -> None:
        if connection.engine.url.database == url.database and not READ_ONLY.match(sql):
            no_parameters = not parameters and context is not None and context.no_parameters
            statements.append(Statement(sql, parameters, many, no_parameters))

    recording = url.get_backend_name() not in ("sqlite", "postgresql")  # those are copied whole
    if recording:
        event.listen(Engine, "before_cursor_execute", record)
    try:
        create_db(alembic_config_for(url))
    finally:
        if recording:
            event.remove(Engine, "before_cursor_execute", record)
    return statements


def alembic_config_for(url: URL) -> Config:
    """The project's alembic.ini, pointed at ``url``, leaving pytest's logging alone."""
    config = project_config()
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config
