"""Post-write hook: format a new revision file with ruff, when ruff is installed.

alembic.ini runs it as ``python -m migrations.format_revision <file>`` after
``alembic revision`` writes a file. ruff fixes what it can (unused imports, their order)
and formats the file; what it cannot fix (an undefined name, which the next ``alembic
upgrade`` would fail on) is printed, and the revision is still written. Without ruff the
file is left as written, so ``alembic revision`` keeps working on a machine without it.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys


def main(paths: list[str]) -> int:
    if importlib.util.find_spec("ruff") is None:
        print("ruff is not installed: the new revision is left unformatted.", file=sys.stderr)
        return 0
    ruff = ruff_command()
    subprocess.run([*ruff, "check", "--no-cache", "--fix-only", "--quiet", "--exit-zero", *paths], check=False)
    subprocess.run([*ruff, "format", "--no-cache", "--quiet", *paths], check=False)
    # What is left: errors only (F: names, imports, syntax), not the project's style rules.
    left = subprocess.run(
        [*ruff, "check", "--no-cache", "--quiet", "--select", "E9,F", "--output-format", "concise", *paths],
        check=False,
        capture_output=True,
        text=True,
    )
    if left.returncode != 0 and left.stdout.strip():
        print("ruff found what it cannot fix in the new revision (fix it before you upgrade):", file=sys.stderr)
        print(left.stdout.rstrip(), file=sys.stderr)
    return 0


def ruff_command() -> list[str]:
    """ruff's own binary, as ``python -m ruff`` finds it, without a Python start-up per run."""
    try:
        from ruff.__main__ import find_ruff_bin

        return [find_ruff_bin()]
    except (ImportError, FileNotFoundError):
        return [sys.executable, "-m", "ruff"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
