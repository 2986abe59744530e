"""Validate the answers before anything is rendered.

The checks are plain functions (``errors(answers)`` runs them all) so the template's
tests can import and call them. They run twice, both without side effects:

- in cookiecutter's own process, as it finishes the answers: cookiecutter.json's
  ``__check_answers`` goes through the ``check_answers`` filter of ``AnswersCheck``
  (a local Jinja extension, ``_extensions``), which raises ``FailedHookException``;
  cookiecutter's command line prints that as one line and exits 1, before it makes
  the project folder or the replay file. A failing hook script cannot do that: its
  exit status makes cookiecutter 2.7 print a traceback after the ERROR line (and a
  project folder whose name is too long fails before any hook runs);
- as this pre-generation hook, which cookiecutter runs on every path (``--replay``,
  cruft): one ``ERROR: ...`` line on stderr, exit 1, and cookiecutter removes the
  half-made project folder.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import unicodedata
from collections.abc import Mapping

from jinja2.ext import Extension

DATABASES = ("sqlite", "postgresql", "mysql")
CONFIGS = ("alembic.ini", "pyproject.toml")  # where Alembic's settings and ours live
# A title on one line: env.py's first docstring line holds it in 68 of ruff's 120 columns.
MAX_NAME_COLUMNS = 50
# Folder, distribution and package names; the package also names the database in the
# default URL, and PostgreSQL and MySQL take 63 and 64 characters. Keep in step with
# cookiecutter.json's slugify(max_length=63).
MAX_NAME_LENGTH = 63
# Names beside the package in the rendered project (compared ignoring case: one folder
# on macOS and Windows).
PROJECT_FILES = {"migrations", "tests", "create_db"}
# What the rendered project installs (its dependencies and dev group, with theirs), is
# built and rendered by, as import names (and distribution names, dashes for underscores):
# a package of that name in the project folder shadows it.
DEPENDENCIES = {
    *("alembic", "sqlalchemy", "mako", "markupsafe", "typing_extensions", "greenlet", "tomli"),
    *("psycopg", "psycopg_binary", "psycopg_c", "tzdata", "pymysql"),
    *("pytest", "_pytest", "py", "pluggy", "iniconfig", "packaging", "pygments", "exceptiongroup", "colorama"),
    *("ruff", "pre_commit", "cfgv", "identify", "nodeenv", "yaml", "_yaml", "virtualenv", "distlib", "filelock"),
    *("platformdirs", "python_discovery", "hatchling", "pathspec", "trove_classifiers", "editables"),
    *("cookiecutter", "jinja2", "pip", "setuptools", "pkg_resources", "_distutils_hack", "wheel"),
    *("sitecustomize", "usercustomize", "__main__"),
}
# Names Windows gives to devices: no folder may have them.
WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{n}" for n in range(1, 10)), *(f"lpt{n}" for n in range(1, 10))}
SLUG = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
JINJA_MARKERS = ("{" + "{", "{" + "%", "{" + "#")  # written apart: this file is a Jinja template


def columns(text: str) -> int:
    """Terminal columns, at most: East Asian wide and ambiguous characters take two."""
    return sum(2 if unicodedata.east_asian_width(character) in "WFA" else 1 for character in text)


def unwritable(character: str) -> bool:
    """Control characters, line breaks, lone surrogates, non-characters: TOML, YAML or UTF-8 refuse them."""
    code = ord(character)
    noncharacter = 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE
    return noncharacter or unicodedata.category(character) in ("Cc", "Cs", "Zl", "Zp")


def check_project_name(name: str) -> str | None:
    if not name.strip():
        return "project_name is empty: give the project a name, e.g. 'My Project'."
    if any(unwritable(character) for character in name):
        return "project_name may not contain tabs, line breaks, control characters or Unicode non-characters."
    if any(character in name for character in '"\\'):
        return "project_name may not contain double quotes or backslashes."
    if any(marker in name for marker in JINJA_MARKERS):
        return "project_name may not contain template markers ({ followed by {, % or #)."
    if name != name.strip():
        return "project_name may not start or end with spaces."
    if columns(name) > MAX_NAME_COLUMNS:
        return f"project_name is longer than {MAX_NAME_COLUMNS} characters: give a shorter title."
    return None


def check_slug(slug: str) -> str | None:
    if len(slug) > MAX_NAME_LENGTH:
        return f"project_slug is longer than {MAX_NAME_LENGTH} characters: give a shorter one."
    if not SLUG.fullmatch(slug):
        return (
            f"project_slug {slug!r} is not a valid folder name: use lowercase letters, "
            "digits and single dashes, starting with a letter (e.g. 'my-project')."
        )
    if slug in WINDOWS_DEVICES:
        return f"project_slug {slug!r} is a device name on Windows: choose another."
    if slug.replace("-", "_") in DEPENDENCIES:
        return f"project_slug {slug!r} is the name of one of the project's dependencies: choose another."
    return None


def check_package_name(package: str) -> str | None:
    if len(package) > MAX_NAME_LENGTH:
        return f"package_name is longer than {MAX_NAME_LENGTH} characters: give a shorter one."
    if not package.isidentifier() or not package.isascii():
        return f"package_name {package!r} is not a Python identifier: use e.g. 'my_project'."
    if keyword.iskeyword(package) or keyword.issoftkeyword(package):
        return f"package_name {package!r} is a Python keyword: choose another name."
    if package in DEPENDENCIES or package in sys.stdlib_module_names:
        return f"package_name {package!r} would shadow the module of that name: choose another."
    if package.lower() in PROJECT_FILES or package.lower() in WINDOWS_DEVICES:
        return f"package_name {package!r} would clash with a file or folder of that name: choose another."
    return None


def check_database(database: str) -> str | None:
    if database not in DATABASES:
        return f"database {database!r} is not supported: choose one of {', '.join(DATABASES)}."
    return None


def check_config(config: str) -> str | None:
    if config not in CONFIGS:
        return f"config {config!r} is not supported: choose one of {', '.join(CONFIGS)}."
    return None


def rendered_metadata_paths(package: str) -> tuple[str, ...]:
    """The target_metadata answers that name what the template renders: <package>/models.py."""
    return tuple(f"{package}.models:{attribute}" for attribute in ("metadata", "Base", "Base.metadata"))


def check_target_metadata(path: str, package: str) -> str | None:
    choices = rendered_metadata_paths(package)
    if path not in choices:
        return (
            f"target_metadata {path!r} is not in the models this template renders: answer "
            f"{' or '.join(repr(choice) for choice in choices)}, then point target_metadata in "
            "alembic.ini at your own module (README: 'Copy into an existing repository')."
        )
    return None


def errors(answers: Mapping[str, str]) -> list[str]:
    """Every problem with the answers, in prompt order (target_metadata's only with a sound package_name)."""
    package_error = check_package_name(answers["package_name"])
    found = [
        check_project_name(answers["project_name"]),
        check_slug(answers["project_slug"]),
        package_error,
        check_database(answers["database"]),
        None if package_error else check_target_metadata(answers["target_metadata"], answers["package_name"]),
        check_config(answers["config"]),
    ]
    return [error for error in found if error]


def check_answers(answers: Mapping[str, str]) -> str:
    """The ``check_answers`` filter: raise cookiecutter's FailedHookException on a bad answer."""
    problems = errors(answers)
    if problems:
        from cookiecutter.exceptions import FailedHookException

        raise FailedHookException(f"ERROR: {problems[0]}")
    return "yes"


class AnswersCheck(Extension):
    """Adds the ``check_answers`` filter to cookiecutter's Jinja environment."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.filters["check_answers"] = check_answers


def main() -> int:
    # Single-quoted raw strings: tojson escapes ' but not ", and keeps backslashes.
    # fmt: off
    answers = {
        "project_name": json.loads(r'{{ cookiecutter.project_name | tojson }}'),
        "project_slug": json.loads(r'{{ cookiecutter.project_slug | tojson }}'),
        "package_name": json.loads(r'{{ cookiecutter.package_name | tojson }}'),
        "database": json.loads(r'{{ cookiecutter.database | tojson }}'),
        "target_metadata": json.loads(r'{{ cookiecutter.target_metadata | tojson }}'),
        "config": json.loads(r'{{ cookiecutter.config | tojson }}'),
    }
    # fmt: on
    problems = errors(answers)
    if problems:
        print(f"ERROR: {problems[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
