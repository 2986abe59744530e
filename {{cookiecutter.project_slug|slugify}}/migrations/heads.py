"""Parallel branches caught before the merge, not after it (as alembic-linear-migrations and
django-linear-migrations do): ``migrations/head.txt`` names the history's head.

``alembic revision`` and ``alembic merge`` rewrite it (a post-write hook: alembic.ini runs
``python -m migrations.heads <file>`` after writing a revision). Two branches that each add
a revision from the same head change its one line differently, so git refuses to merge the
second one until someone runs ``alembic merge heads``, which rewrites it again.

``python -m migrations.cli check_branches`` (pre-commit and the rendered CI run it) fails in
one line when the history has several heads, naming them and the ``alembic merge`` command
that joins them, or when head.txt does not name the head (a revision added by hand:
``check_branches --write`` rewrites it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError

HEAD_FILE = "head.txt"
CONFLICT_MARKERS = ("<<<<<<<", "=======", ">>>>>>>")
PREAMBLE = """\
# The head of this history, rewritten by `alembic revision` and `alembic merge` (a
# post-write hook, migrations/heads.py). Two branches that each add a revision change the
# line below differently: git stops the second merge here. Then run `alembic merge heads`
# (it rewrites this file), or `python -m migrations.cli check_branches` to see both.
"""


def head_file(script: ScriptDirectory) -> Path:
    return Path(script.dir, HEAD_FILE)


def head_lines(script: ScriptDirectory) -> list[str]:
    """What head.txt should say below its preamble: one line per head, "<id> <message>"."""
    lines = []
    for head in sorted(script.get_heads()):
        message = " ".join((script.get_revision(head).doc or "").split())
        lines.append(f"{head} {message}".rstrip())
    return lines


def write_head_file(script: ScriptDirectory) -> Path:
    path = head_file(script)
    path.write_text(PREAMBLE + "".join(f"{line}\n" for line in head_lines(script)), encoding="utf-8")
    return path


def several_heads(script: ScriptDirectory) -> str | None:
    """None with one head (or none); else one line naming each head, where it branches from,
    and the ``alembic merge`` command that joins them."""
    heads = sorted(script.get_heads())
    if len(heads) < 2:
        return None
    named = [_named(script.get_revision(head)) for head in heads]
    listed = ", ".join(named[:-1]) + " and " + named[-1]
    merge = f'alembic merge -m "merge {" and ".join(heads)}" {" ".join(heads)}'
    return f"the history has {len(heads)} heads, {listed}: join them with `{merge}`"


def check_branches(script: ScriptDirectory, write: bool = False) -> str:
    """One line when all is well; a CommandError with one line when the history has several
    heads or head.txt does not name its head (``write``: rewrite it instead)."""
    problem = several_heads(script)
    if problem is not None:
        raise CommandError(problem)
    path = head_file(script)
    wanted = head_lines(script)
    if write:
        write_head_file(script)
        return f"{shown(path)} names {', '.join(wanted) or 'no revision'}."
    if not path.exists():
        write_it = "python -m migrations.cli check_branches --write"
        raise CommandError(f"{shown(path)} is missing: write it with `{write_it}`")
    written = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    if any(line.startswith(CONFLICT_MARKERS) for line in written):
        raise CommandError(
            f"{shown(path)} holds a merge conflict: two branches each added a revision; "
            "after the merge run `alembic merge heads` (it rewrites the file)"
        )
    found = [line for line in written if line and not line.startswith("#")]
    if [line.split()[0] for line in found] != [line.split()[0] for line in wanted]:
        said = ", ".join(line.split()[0] for line in found) or "no revision"
        raise CommandError(
            f"{shown(path)} names {said}, but the history's head is {', '.join(line.split()[0] for line in wanted)} "
            "(a revision written without `alembic revision`?): rewrite it with "
            "`python -m migrations.cli check_branches --write`"
        )
    return f"One head, {wanted[0] if wanted else 'no revision yet'}, as {shown(path)} says."


def _named(revision: Script) -> str:
    message = " ".join((revision.doc or "").split())
    parents = revision._versioned_down_revisions
    source = ", ".join(parents) if parents else "base"
    return f'{revision.revision} ("{message}", from {source})'


def shown(path: Path) -> str:
    """``path`` relative to the working folder when it is under it (as messages show it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _script_for(revision_file: Path) -> ScriptDirectory:
    """The history a new revision file belongs to: the configured one (alembic.ini or
    pyproject.toml in the folder the hook runs in) when the file is in it, else the folder
    above it holding env.py (another environment's ``script_location``)."""
    for config in _configs():
        script = ScriptDirectory.from_config(config)
        locations = script.version_locations or [str(Path(script.dir, "versions"))]
        if any(revision_file.resolve().is_relative_to(Path(location).resolve()) for location in locations):
            return script
    for folder in revision_file.resolve().parents:
        if (folder / "env.py").exists():
            return ScriptDirectory(str(folder))
    raise CommandError(f"{revision_file} is in no Alembic script directory (no env.py above it)")


def _configs() -> list[Config]:
    ini, toml = Path("alembic.ini"), Path("pyproject.toml")
    if not ini.exists() and not toml.exists():
        return []
    # as `alembic` finds them: alembic.ini, and pyproject.toml's [tool.alembic] beside it
    return [Config(str(ini) if ini.exists() else None, toml_file=str(toml) if toml.exists() else None)]


def main(paths: list[str]) -> int:
    """The post-write hook: rewrite head.txt of the history each new revision file is in."""
    for raw in paths:
        script = _script_for(Path(raw))
        path = write_head_file(script)
        print(f"{shown(path)}: {', '.join(head_lines(script))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
