"""Stamp a database at head, as ``alembic stamp head`` does, with the history loaded once per process.

``command.stamp()`` builds a new ScriptDirectory on every call, and finding head imports
every revision file again: a test fixture calling create_db() for database after database
would re-read the whole history each time. Here the ScriptDirectory is kept for the process
and loaded anew only when a file in its version locations is added, removed or rewritten
(its size or modification time changed). The stamp itself still runs through env.py, on the
caller's connection (recipe 3), with Alembic's public ``MigrationContext.stamp()``, once
``one_head()`` has found the history to have exactly one head.

    stamp_head(config, connection)
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError, coerce_resource_to_filename
from sqlalchemy import Connection

Files = tuple[tuple[str, int, int], ...]  # (path, size, modification time in ns) of every file
KEPT = 4  # script directories kept (tests may copy migrations/ to many places)
_loaded: dict[tuple, tuple[Files, ScriptDirectory]] = {}


def stamp_head(config: Config, connection: Connection, script: ScriptDirectory | None = None) -> None:
    """Record head in the version table, through env.py, on ``connection`` (whose transaction
    the caller commits). ``script``: the config's ScriptDirectory, when the caller has it
    from ``history()``."""
    script = script if script is not None else script_directory(config)
    one_head(script)

    def stamp(_heads, context: MigrationContext):
        context.stamp(script, "head")
        return ()

    config.attributes["connection"] = connection
    with EnvironmentContext(config, script, fn=stamp, destination_rev="head"):
        script.run_env()


def one_head(script: ScriptDirectory) -> None:
    """A CommandError unless the history has exactly one head (with several, which one would
    the models be?). Imports the revision files, once per process: a caller building from
    the models calls it after ``create_all()``, as a revision may attach things to the
    models' tables when it is imported."""
    heads = sorted(script.get_heads())
    if not heads:
        raise CommandError(f"{script.versions} holds no revision, so there is no head to stamp")
    if len(heads) > 1:
        raise CommandError(
            f"the history has {len(heads)} heads ({', '.join(heads)}): merge them with "
            '`alembic merge heads -m "merge"` first'
        )


def script_directory(config: Config) -> ScriptDirectory:
    """The config's ScriptDirectory, loaded once per process while its files stay the same."""
    return history(config)[0]


def history(config: Config) -> tuple[ScriptDirectory, Files]:
    """The config's ScriptDirectory (see ``script_directory``) and the files under its version
    locations, as found now (``version_files``). Reads no revision file."""
    script = ScriptDirectory.from_config(config)  # reads no revision file until asked
    key = (script.dir, tuple(script.version_locations or ()), script.sourceless, script.recursive_version_locations)
    files = version_files(script)
    loaded = _loaded.get(key)
    if loaded is not None and loaded[0] == files:
        return loaded[1], files
    _loaded.pop(key, None)
    _loaded[key] = (files, script)
    while len(_loaded) > KEPT:
        del _loaded[next(iter(_loaded))]  # the least recently loaded
    return script, files


def version_files(script: ScriptDirectory) -> Files:
    """Every file under the version locations, in subfolders too (more than Alembic reads,
    never less). __pycache__ only with ``sourceless``: otherwise Alembic reads the sources,
    and Python uses a cached .pyc only while its source is unchanged."""
    locations = script.version_locations or [str(Path(script.dir, "versions"))]
    found = []
    for location in locations:
        for folder, subfolders, names in os.walk(coerce_resource_to_filename(location)):
            if not script.sourceless and "__pycache__" in subfolders:
                subfolders.remove("__pycache__")
            for name in names:
                path = os.path.join(folder, name)
                stat = os.stat(path)
                found.append((path, stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))
