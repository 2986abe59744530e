"""Benchmark: the baked tests/ on a real project's history, beside pytest-alembic's built-ins.

For a project laid out as README's "Copy into an existing repository" leaves it (alembic.ini,
create_db.py, migrations/ with the project's own revisions, and the baked tests/conftest.py,
test_migrations.py and test_recipes.py in its tests/), it times, as the median of ``--runs``
runs taking turns after an untimed first run of each (bytecode caching on, as users run
Python):

- ours: ``pytest tests`` (the migration suite and the recipe tests), whatever they find;
- pytest-alembic's four built-in tests (test_single_head_revision, test_upgrade,
  test_model_definitions_match_ddl, test_up_down_consistency), from a test module written
  into the project's tests/ for the run and removed afterwards, with its best honest
  ``alembic_engine``: a plain pooled ``create_engine(url)`` on a server
  (``create_async_engine`` for an async URL), our ``make_engine`` on SQLite; run by
  ``--pytest-alembic-python`` (pytest<9 and pytest-alembic; the project's own packages too).

Real histories have faults: failing tests are timed too, and each suite's outcome is shown.

    python benchmarks/bench_real_history.py --project ~/prefect-trial \\
        --url postgresql+asyncpg://postgres@127.0.0.1/postgres --python ~/prefect-trial/venv/bin/python
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from bench_migration_suite import PYTEST_ALEMBIC_TESTS, Suite, pytest_alembic_problem, pytest_command, time_suites

PA_FILE = "tests/test_zz_pytest_alembic_builtin.py"
PA_MODULE = f'''"""pytest-alembic's built-in tests on this project, for the benchmark (removed after it)."""

import pytest
from pytest_alembic.tests import {", ".join(PYTEST_ALEMBIC_TESTS)}  # noqa: F401
from sqlalchemy import create_engine

from migrations.settings import is_async, make_engine


@pytest.fixture
def alembic_engine(database_url):
    """A new database per test; its best setup: a plain pooled engine on a server."""
    if database_url.get_backend_name() == "sqlite":
        engine = make_engine(database_url)
    elif is_async(database_url):
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(database_url)
    else:
        engine = create_engine(database_url)
    yield engine
'''


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True, help="the project folder (alembic.ini, tests/)")
    parser.add_argument("--url", required=True, help="the server under test (TEST_DATABASE_URL), or sqlite:///x.db")
    parser.add_argument("--runs", type=int, default=3, help="runs per suite; the median is shown (default 3)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter with the project's packages")
    parser.add_argument("--pytest-alembic-python", metavar="PATH", help="default: --python")
    args = parser.parse_args(argv)

    project = args.project.resolve()
    if not (project / "alembic.ini").is_file() or not (project / "tests" / "test_migrations.py").is_file():
        raise SystemExit(f"{project}: expected alembic.ini and tests/test_migrations.py there")
    pa_python = args.pytest_alembic_python or args.python
    problem, version = pytest_alembic_problem(pa_python)
    suites = [Suite("ours: pytest tests", [*pytest_command(args.python, "tests", ()), "--ignore", PA_FILE])]
    label = f"pytest-alembic {version or '?'}: 4 built-in tests"
    written = project / PA_FILE
    if problem is None:
        suites.append(Suite(label, pytest_command(pa_python, PA_FILE, ("pytest_alembic.plugin",))))
        written.write_text(PA_MODULE)
    try:
        load = " ".join(f"{value:.2f}" for value in os.getloadavg())
        timings = time_suites(project, suites, args.runs, args.url, must_pass=False)
    finally:
        written.unlink(missing_ok=True)
    revisions = sum(1 for path in (project / "migrations" / "versions").rglob("*.py") if path.name != "__init__.py")
    print(
        f"{project.name}: {revisions} revision files, on {args.url.split('@')[-1]}: wall time of the whole pytest "
        f"process, median of {args.runs} runs after an untimed first one, taking turns (load average before: {load})"
    )
    print(f"{'suite':<42} {'tests':<36} {'median':>7} {'min':>7} {'max':>7} {'CPU median':>10}")
    for timing in timings:
        print(
            f"{timing.label:<42} {timing.outcome[:36]:<36} {timing.median:>6.2f}s {min(timing.seconds):>6.2f}s "
            f"{max(timing.seconds):>6.2f}s {statistics.median(timing.cpu_seconds):>9.2f}s"
        )
    if problem is not None:
        print(f"{label:<42} not measured: {problem}")
    elif len(timings) == 2:
        ours, theirs = timings[0].median, timings[1].median
        verdict = "met" if ours <= theirs else "NOT met"
        print(f"target: the whole baked tests/ no slower than pytest-alembic's four: {verdict} ({theirs / ours:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
