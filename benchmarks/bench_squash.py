"""Benchmark: squashing a long history (``python -m migrations.cli squash``), and what it saves.

Bakes a project per database with cookiecutter and writes bench_create_db.py's synthetic
history of ``--revisions`` revisions with churn (default 300; each revision creates a table,
adds a column to it and indexes that column) with matching models. Then, on each database
(``--database sqlite|postgresql|mysql|all``), as medians of ``--runs`` runs:

- the squash: ``python -m migrations.cli squash head`` in a fresh copy of the project (with
  the bytecode of an untimed ``python -m migrations.cli heads`` in it, as a project that has
  been run before), ``DATABASE_URL`` naming a database that does not exist (a server
  database never made; on SQLite a file never made): wall time of the process, which builds
  the old history on a scratch database, writes the new revision and checks it on a second
  one. It must exit 0 and leave exactly one revision file in migrations/versions. The first
  run is untimed (a warm-up); the first timed run's squashed project is kept.
  Target (issue "Long histories"): squashing 300 revisions takes <= 10 s on each database.
- then the old history and the squashed one taking turns, run by run, after an untimed
  first round, each on a new empty database (made and dropped outside the timing; SQLite: a
  new file), wall time of the process:
  - ``alembic upgrade head`` (the database then checked: every table there, head stamped);
  - the baked suite, ``python -m pytest tests/test_migrations.py -q -p no:cacheprovider``
    with ``CI=true`` and ``TEST_DATABASE_URL`` the server (SQLite: unset, alembic.ini's
    SQLite URL, files in pytest's tmp_path), plugins not auto-loaded (this venv has the
    template's own, which the baked project does not use); it must pass.
  Target: on the squashed history both run at least 5x faster than on the 300-revision one.
- beside each, taking the same turns, its floor on each history, to show what any tool could
  gain there: for ``alembic upgrade head``, one Python process importing SQLAlchemy, Alembic,
  the driver and the models, plus the database's own client replaying ``alembic upgrade head
  --sql`` in one transaction; for the suite, bench_migration_suite.py's floor (the imports,
  and the client replaying the stairway's SQL and create_db's). The floor's own ratio, old /
  squashed, bounds the ratio any suite or upgrade could reach on this history.

Python's bytecode caching is on, as users run it. Times are shown, never asserted.

    python benchmarks/bench_squash.py --database all --runs 3
    python benchmarks/bench_squash.py --database postgresql --revisions 100 --runs 1

Servers: ``TEST_POSTGRESQL_URL`` (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres)
and ``TEST_MYSQL_URL`` (default mysql+pymysql://root@127.0.0.1:3306/test), as the template's tests.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_create_db import SERVERS, Server, bake, check_at_head, timed, write_history_with_churn  # noqa: E402
from bench_migration_suite import DRIVERS, Floor  # noqa: E402

TARGET_SQUASH_SECONDS = 10.0
TARGET_SPEED_UP = 5.0
SUITE = [sys.executable, "-m", "pytest", "tests/test_migrations.py", "-q", "-p", "no:cacheprovider"]


def run(command: list[str], cwd: Path, env: dict[str, str], what: str) -> tuple[float, str]:
    """Wall time of one process and its output; it must succeed, else the benchmark stops with its output."""
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1800
    )
    elapsed = time.perf_counter() - start
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise SystemExit(f"{what} failed (exit {result.returncode}) in {cwd}:\n{output[-4000:]}")
    return elapsed, result.stdout


def environment(**variables: str) -> dict[str, str]:
    """This environment without the benchmark's own database variables, plus ``variables``."""
    dropped = ("DATABASE_URL", "TEST_DATABASE_URL", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    return {**env, **variables}


def absent_url(server: Server, folder: Path) -> str:
    """A database that does not exist, and is never made: a unique name on the server, a file never written."""
    name = f"bench_absent_{uuid.uuid4().hex[:12]}"
    if server.database == "sqlite":
        return f"sqlite:///{folder / f'{name}.sqlite'}"
    return server.url.set(database=name).render_as_string(hide_password=False)


def exists(server: Server, url: str) -> bool:
    """Whether the database of ``url`` exists (the squash should not make the configured one)."""
    from sqlalchemy import make_url, text

    name = make_url(url).database
    if server.database == "sqlite":
        return Path(name).exists()
    query = {
        "postgresql": "SELECT 1 FROM pg_database WHERE datname = :name",
        "mysql": "SELECT 1 FROM information_schema.schemata WHERE schema_name = :name",
    }[server.database]
    with server._admin().connect() as connection:
        return connection.execute(text(query), {"name": name}).first() is not None


def revision_files(project: Path) -> list[Path]:
    return sorted((project / "migrations" / "versions").glob("*.py"))


def time_squash(pristine: Path, server: Server, folder: Path, runs: int, squashed: Path) -> tuple[list[float], list]:
    """``runs`` squashes, each in a fresh copy of ``pristine``, after an untimed one; the first
    timed run's project becomes ``squashed``. Returns the wall times and the squash's own lines."""
    seconds: list[float] = []
    lines: list[str] = []
    for round_ in range(runs + 1):
        copy = folder / f"squash-{round_}"
        shutil.copytree(pristine, copy, symlinks=True)  # copy2: the bytecode stays valid
        url = absent_url(server, copy)
        try:
            command = [sys.executable, "-m", "migrations.cli", "squash", "head"]
            elapsed, stdout = run(command, copy, environment(DATABASE_URL=url), "squash head")
            made = exists(server, url)
        finally:
            server.drop(url)  # never made; dropped if it was, all the same
        if made:
            raise SystemExit(f"the squash made the configured database, which did not exist: {url}")
        left = revision_files(copy)
        if len(left) != 1:
            raise SystemExit(f"after the squash migrations/versions holds {len(left)} .py files, not 1: {copy}")
        said = [line for line in stdout.splitlines() if "squashed into" in line]
        if round_ == 0:  # the warm-up
            shutil.rmtree(copy)
            continue
        seconds.append(elapsed)
        lines.append(said[-1] if said else "(no summary line: " + " ".join(stdout.split())[-300:] + ")")
        if round_ == 1:
            copy.rename(squashed)
        else:
            shutil.rmtree(copy)
    return seconds, lines


def time_histories(
    projects: dict[str, Path], server: Server, head: str, tables: int, runs: int
) -> tuple[dict[str, dict[str, list[float]]], dict[str, str]]:
    """``alembic upgrade head`` and the baked suite on each project, taking turns, after an untimed
    round: their wall times, and the suite's outcome (pytest's counts) on each."""
    times: dict[str, dict[str, list[float]]] = {"upgrade": {}, "suite": {}, "upgrade floor": {}, "suite floor": {}}
    suite_env = environment(CI="true", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    if server.database != "sqlite":
        suite_env["TEST_DATABASE_URL"] = SERVERS[server.database]
    outcomes: dict[str, str] = {}
    upgrade_floors = {label: UpgradeFloor(project, server, label) for label, project in projects.items()}
    suite_floors = {}
    for label, project in projects.items():
        folder = server.folder / f"suite-floor-{label}"
        folder.mkdir(exist_ok=True)
        suite_floors[label] = Floor(project, server.database, folder)
    for round_ in range(runs + 1):
        for label in projects:
            elapsed = upgrade_floors[label].run()
            if round_:
                times["upgrade floor"].setdefault(label, []).append(elapsed)
            elapsed, _ = suite_floors[label].run()
            if round_:
                times["suite floor"].setdefault(label, []).append(elapsed)
        for label, project in projects.items():
            url = server.new()
            try:
                elapsed, _ = run(
                    [sys.executable, "-m", "alembic", "upgrade", "head"],
                    project,
                    environment(DATABASE_URL=url),
                    f"alembic upgrade head ({label})",
                )
                check_at_head(url, tables, head)
            finally:
                server.drop(url)
            if round_:
                times["upgrade"].setdefault(label, []).append(elapsed)
        for label, project in projects.items():
            elapsed, stdout = run(SUITE, project, suite_env, f"the baked suite ({label})")
            summary = re.search(r"^=*\s*(\d+ (?:passed|failed).*?) in [\d.]+s", stdout, flags=re.MULTILINE)
            outcomes[label] = summary.group(1) if summary else "?"
            if round_:
                times["suite"].setdefault(label, []).append(elapsed)
    return times, outcomes


class UpgradeFloor:
    """``alembic upgrade head``'s floor on one history: the imports (the collector off), and the
    database's client replaying ``alembic upgrade head --sql`` in one transaction on a new database."""

    def __init__(self, project: Path, server: Server, label: str) -> None:
        self.project, self.server = project, server
        package = next(project.glob("*/models.py")).parent.name
        self.imports = (
            f"import gc; gc.disable(); import sqlalchemy, alembic.command, {DRIVERS[server.database]}, {package}.models"
        )
        scratch = server.new()
        try:
            _, sql = run(
                [sys.executable, "-m", "alembic", "upgrade", "head", "--sql"],
                project,
                environment(DATABASE_URL=scratch),
                f"alembic upgrade head --sql ({label})",
            )
        finally:
            server.drop(scratch)
        self.script = server.folder / f"upgrade-floor-{label}.sql"
        self.script.write_text(server.floor_script(sql))

    def run(self) -> float:
        seconds = timed([sys.executable, "-c", self.imports], self.project, environment())
        url = self.server.new()
        try:
            command, env, stdin = self.server.client_command(url, self.script)
            return seconds + timed(command, self.project, env, stdin)
        finally:
            self.server.drop(url)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s ({min(values):.2f}..{max(values):.2f})"


def report(
    database: str, revisions: int, squash: list[float], lines: list[str], times: dict, outcomes: dict[str, str]
) -> None:
    runs = len(squash)
    print(f"\n{database}: {revisions} revisions, medians of {runs} runs (min..max), wall time of each process")
    squash_median = statistics.median(squash)
    verdict = "met" if squash_median <= TARGET_SQUASH_SECONDS else "NOT met"
    own = [float(match.group(1)) for line in lines if (match := re.search(r" in ([\d.]+) s;", line))]
    own_text = f" (its own figure {statistics.median(own):.1f} s)" if own else ""
    print(f"  {'squash head':<34} {spread(squash)}{own_text}; target <= {TARGET_SQUASH_SECONDS:g} s: {verdict}")
    print(f"    {lines[0]}")
    old, new = "old", "squashed"
    print(f"  {'':<34} {f'{revisions} revisions':<24} {'squashed':<24} {'old / squashed':>14}  target")
    for key, label in (("upgrade", "alembic upgrade head, empty db"), ("suite", "tests/test_migrations.py")):
        before, after = times[key][old], times[key][new]
        ratio = statistics.median(before) / statistics.median(after)
        verdict = "met" if ratio >= TARGET_SPEED_UP else "NOT met"
        print(
            f"  {label:<34} {spread(before):<24} {spread(after):<24} {ratio:>13.2f}x  "
            f">= {TARGET_SPEED_UP:g}x: {verdict}"
        )
        before, after = times[f"{key} floor"][old], times[f"{key} floor"][new]
        ratio = statistics.median(before) / statistics.median(after)
        print(f"  {'  its floor':<34} {spread(before):<24} {spread(after):<24} {ratio:>13.2f}x")
    print(f"    the suite: old {outcomes[old]}; squashed {outcomes[new]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "mysql", "all"], default="all")
    parser.add_argument("--revisions", type=int, default=300, help="length of the synthetic history (default 300)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the baked projects and print where they are")
    args = parser.parse_args(argv)

    databases = ["sqlite", "postgresql", "mysql"] if args.database == "all" else [args.database]
    where = Path(tempfile.mkdtemp(prefix="bench-squash-"))
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    load_before = " ".join(f"{load:.2f}" for load in os.getloadavg())
    print(
        f"Squash: a synthetic history of {args.revisions} revisions (each: a table, a column added to it, an "
        f"index), matching models; bytecode caching on; load average before: {load_before}"
    )
    started = time.perf_counter()
    try:
        for database in databases:
            folder = where / database
            baked = bake(folder / "bake", database)
            head = write_history_with_churn(baked, args.revisions)
            pristine = folder / "pristine"
            baked.rename(pristine)
            run([sys.executable, "-m", "migrations.cli", "heads"], pristine, environment(), "migrations.cli heads")
            server = Server(database, folder)
            squashed = folder / "squashed"
            squash, lines = time_squash(pristine, server, folder, args.runs, squashed)
            projects = {"old": pristine, "squashed": squashed}
            times, outcomes = time_histories(projects, server, head, args.revisions, args.runs)
            report(database, args.revisions, squash, lines, times, outcomes)
        print(f"\nall of it took {time.perf_counter() - started:.0f} s")
        if args.keep:
            print(f"baked projects kept in {where}")
    finally:
        if not args.keep:
            shutil.rmtree(where, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
