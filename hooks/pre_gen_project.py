"""Validate the answers before anything is rendered.

The project folder name is the slug through the slugify filter: a valid slug is
unchanged by slugify, and a bad one (``a/b``) makes a single folder that cookiecutter
removes when this hook fails, instead of nested folders it would leave behind.

Prints one ``ERROR: ...`` line and exits 1 on a bad answer; cookiecutter then
removes the half-made project folder. No side effects: cruft re-runs this hook.
The checks are plain functions so the template's tests can import and call them.
"""

from __future__ import annotations

import json
import keyword
import re
import sys

DATABASES = ("sqlite", "postgresql", "mysql")
RESERVED_PACKAGES = {"migrations", "tests", "alembic", "sqlalchemy", "create_db"}
SLUG = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
METADATA_PATH = re.compile(rf"({DOTTED}):({DOTTED})")


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


def check_target_metadata(path: str) -> str | None:
    match = METADATA_PATH.fullmatch(path)
    words = re.split(r"[.:]", path)
    if not match or any(keyword.iskeyword(word) for word in words):
        return (
            f"target_metadata {path!r} is not a 'module:attribute' path: "
            "use e.g. 'my_project.models:metadata' or 'app.db:Base.metadata'."
        )
    return None


def errors(answers: dict[str, str]) -> list[str]:
    """Every problem with the answers, in prompt order."""
    found = [
        check_project_name(answers["project_name"]),
        check_slug(answers["project_slug"]),
        check_package_name(answers["package_name"]),
        check_database(answers["database"]),
        check_target_metadata(answers["target_metadata"]),
    ]
    return [error for error in found if error]


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
