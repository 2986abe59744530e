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
  section's own ``sqlalchemy.url``; a section without a URL of its own shares the main
  database (``$DATABASE_URL``, else ``[DEFAULT]``'s URL).

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


def url_variables(config: Config) -> list[str]:
    """The environment variables that give this environment's URL, first match wins, and
    whether the section's own URL comes before the main one's: see the module's docstring."""
    section = config.config_ini_section
    if section == MAIN:
        return ["DATABASE_URL"]
    own = f"{re.sub(r'[^A-Za-z0-9]', '_', section).upper()}_DATABASE_URL"
    return [own] if has_own_url(config) else [own, "DATABASE_URL"]


def has_own_url(config: Config) -> bool:
    """Whether the environment's section sets a ``sqlalchemy.url`` of its own (not [DEFAULT]'s)."""
    parser = config.file_config
    section = config.config_ini_section
    try:
        own = parser.get(section, "sqlalchemy.url", raw=True, fallback=None)
    except configparser.NoSectionError:
        return False
    return own is not None and own != parser.defaults().get("sqlalchemy.url")


def version_table(config: Config) -> str:
    """The environment's version table: ``version_table`` in its section (or ``[tool.alembic]``),
    or the app's env_hooks module's, else ``alembic_version``."""
    from migrations.settings import env_hooks  # settings imports this module

    name = env_hooks(config).get("version_table") or config.get_alembic_option("version_table")
    name = name or DEFAULT_VERSION_TABLE
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise CommandError(f"version_table = {name!r}: expected a table name (letters, digits, _).")
    return name


def environments(alembic_ini: Path) -> list[str]:
    """The environments of the project: ``alembic`` first, then each other section of
    ``alembic_ini`` that sets a ``script_location`` of its own."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(alembic_ini)
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
    its own: autogenerate would drop another history's, in a database they share)."""
    if not config.config_file_name:
        return frozenset({version_table(config)})
    toml = getattr(config, "toml_file_name", None)
    named = [
        version_table(Config(config.config_file_name, ini_section=name, toml_file=toml))
        for name in environments(Path(config.config_file_name))
    ]
    return frozenset({version_table(config), *named})
