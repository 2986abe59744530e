"""Several independent histories in one project: the living cookbook's "Run multiple Alembic
environments from one .ini file".

Each environment is a section of alembic.ini with a ``script_location`` of its own, and is
run with ``alembic --name <section>`` (``python create_db.py --name <section>``,
``python -m migrations.cli --name <section> ...``); ``[alembic]`` is the main one. A second
environment is a copy of the ``[alembic]`` section (Alembic reads no option of one section
in another; ``[DEFAULT]`` is shared) with its own:

- ``script_location``: a folder with its ``versions/``, ``script.py.mako`` and an env.py
  that runs ours (``runpy.run_path`` of migrations/env.py: see the baked README);
- ``version_table``: the table its revisions are recorded in (default ``alembic_version``);
  two histories in one database need two;
- ``target_metadata``: its models;
- its database: ``$<NAME>_DATABASE_URL`` (``AUDIT_DATABASE_URL`` for ``[audit]``), else the
  section's ``sqlalchemy.url``, as ``$DATABASE_URL`` and ``[alembic]``'s are the main one's.
  Never the main one's unless given: to share the main database, give its URL (two
  histories in one database need two version tables).

The migration suite (tests/test_migrations.py) walks every environment.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from alembic.config import Config
from alembic.util import CommandError

MAIN = "alembic"
DEFAULT_VERSION_TABLE = "alembic_version"


def url_variable(config: Config) -> str:
    """The environment variable that gives this environment's URL: ``DATABASE_URL`` for the
    main one, ``<NAME>_DATABASE_URL`` for the section ``[name]``. Never another environment's:
    a second history never falls back to the main database unless told to."""
    section = config.config_ini_section
    if section == MAIN:
        return "DATABASE_URL"
    return f"{re.sub(r'[^A-Za-z0-9]', '_', section).upper()}_DATABASE_URL"


def version_table(config: Config) -> str:
    """The environment's version table: ``version_table`` in its section (or ``[tool.alembic]``),
    else the app's env_hooks module's, else ``alembic_version``."""
    from migrations.settings import env_hooks  # settings imports this module

    name = config.get_alembic_option("version_table") or env_hooks(config).get("version_table")
    name = name or DEFAULT_VERSION_TABLE
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise CommandError(f"version_table = {name!r}: expected a table name (letters, digits, _).")
    return name


def environments(alembic_ini: Path) -> list[str]:
    """The environments of the project: ``alembic`` first, then each other section of
    ``alembic_ini`` that sets a ``script_location`` of its own."""
    return _environments(_read(alembic_ini))


def _read(alembic_ini: Path | str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(alembic_ini)
    return parser


def _environments(parser: configparser.ConfigParser) -> list[str]:
    others = [
        name
        for name in parser.sections()
        if name != MAIN
        and parser.has_option(name, "script_location")
        and parser.get(name, "script_location") != parser.defaults().get("script_location")
    ]
    return [MAIN, *others]


def all_version_tables(config: Config) -> frozenset[str]:
    """The version tables of every environment of ``config``'s alembic.ini (Alembic knows only
    its own: autogenerate would drop another history's, in a database they share). Another
    section's is read as written there; one that cannot be read is left out (its own runs
    say what is wrong with it)."""
    tables = {version_table(config)}
    if config.config_file_name:
        parser = _read(config.config_file_name)  # read once, for every section
        for name in _environments(parser):
            if name != config.config_ini_section:
                tables.add(parser.get(name, "version_table", fallback=None) or DEFAULT_VERSION_TABLE)
    return frozenset(tables)
