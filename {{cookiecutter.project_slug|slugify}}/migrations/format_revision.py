"""Post-write hook: format a new revision file with ruff, when ruff is installed.

alembic.ini runs it as ``python -m migrations.format_revision <file>`` after
``alembic revision`` writes a file. Without ruff the file is left as written, so
``alembic revision`` keeps working on a machine where ruff is not installed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys


def main(paths: list[str]) -> int:
    if importlib.util.find_spec("ruff") is None:
        print("ruff is not installed: the new revision is left unformatted.", file=sys.stderr)
        return 0
    ruff = [sys.executable, "-m", "ruff"]
    subprocess.run([*ruff, "check", "--no-cache", "--fix-only", "--quiet", "--exit-zero", *paths], check=False)
    subprocess.run([*ruff, "format", "--no-cache", "--quiet", *paths], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
