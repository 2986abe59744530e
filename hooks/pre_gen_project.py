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
from collections.abc import Mapping

from jinja2.ext import Extension

DATABASES = ("sqlite", "postgresql", "mysql")
RESERVED_PACKAGES = {"migrations", "tests", "alembic", "sqlalchemy", "create_db"}
SLUG = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def check_project_name(name: str) -> str | None:
    if not name.strip():
        return "project_name is empty: give the project a name, e.g. 'My Project'."
    if any(character in name for character in '"\\\n'):
        return "project_name may not contain double quotes, backslashes or line breaks."
    return None


def check_slug(slug: str) -> str | None:
    if not SLUG.fullmatch(slug):
        return (
            f"project_slug {slug!r} is not a valid folder name: use lowercase letters, "
            "digits and single dashes, starting with a letter (e.g. 'my-project')."
        )
    return None


def check_package_name(package: str) -> str | None:
    if not package.isidentifier() or not package.isascii():
        return f"package_name {package!r} is not a Python identifier: use e.g. 'my_project'."
    if keyword.iskeyword(package) or keyword.issoftkeyword(package):
        return f"package_name {package!r} is a Python keyword: choose another name."
    if package in RESERVED_PACKAGES or package in sys.stdlib_module_names:
        return f"package_name {package!r} would shadow the module of that name: choose another."
    return None


def check_database(database: str) -> str | None:
    if database not in DATABASES:
        return f"database {database!r} is not supported: choose one of {', '.join(DATABASES)}."
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
    }
    # fmt: on
    problems = errors(answers)
    if problems:
        print(f"ERROR: {problems[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
