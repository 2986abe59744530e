"""Benchmark: the wall time of a freshly baked project's whole ``pytest``, per database.

    python benchmarks/bench_baked_suite.py [--runs 5] [--database sqlite postgresql mysql]

Bakes the default project once per database (the example history), then times
``python -m pytest`` in it, as a user runs it (a new process each run, the databases taking
turns run by run so that all see the same drift in machine speed), and prints the median
beside the target of issue #10: 10 s on SQLite, 20 s on PostgreSQL and MariaDB. The servers
are TEST_POSTGRESQL_URL / TEST_MYSQL_URL (defaults: the local servers, as in tests/conftest.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
SERVERS = {
    "sqlite": None,
    "postgresql": os.environ.get("TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    "mysql": os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
TARGETS = {"sqlite": 10.0, "postgresql": 20.0, "mysql": 20.0}


def bake(database: str, output: Path) -> Path:
    from cookiecutter.main import cookiecutter

    folder = cookiecutter(
        str(TEMPLATE),
        no_input=True,
        output_dir=str(output / database),
        extra_context={"database": database},
    )
    return Path(folder)


def run_suite(project: Path, database: str) -> tuple[float, str]:
    env = {**os.environ, "CI": "true"}
    env.pop("DATABASE_URL", None)
    if SERVERS[database]:
        env["TEST_DATABASE_URL"] = SERVERS[database]
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    last = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    if result.returncode != 0:
        raise SystemExit(f"{database}: the baked suite failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database", nargs="+", choices=list(SERVERS), default=list(SERVERS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        projects = {database: bake(database, Path(scratch)) for database in args.database}
        times: dict[str, list[float]] = {database: [] for database in args.database}
        summary: dict[str, str] = {}
        for _ in range(args.runs):
            for database, project in projects.items():
                elapsed, summary[database] = run_suite(project, database)
                times[database].append(elapsed)
    print(f"Baked project's whole `python -m pytest`, wall time, median of {args.runs} runs (CI=true):")
    print(f"{'database':<12}{'median':>9}{'min':>9}{'max':>9}{'target':>9}  met  pytest's summary")
    for database, values in times.items():
        median = statistics.median(values)
        met = "yes" if median <= TARGETS[database] else "NO"
        print(
            f"{database:<12}{median:>8.2f}s{min(values):>8.2f}s{max(values):>8.2f}s"
            f"{TARGETS[database]:>8.0f}s  {met:<4} {summary[database]}"
        )


if __name__ == "__main__":
    main()
