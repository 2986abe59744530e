"""Benchmark: the baked project's migration suite against pytest-alembic's built-in tests.

Bakes the project for ``--database`` (sqlite, postgresql or mysql) into a temporary folder
with cookiecutter, replaces its example history with a synthetic one of ``--revisions``
revisions (one table and one index each, written from the project's own script.py.mako)
and its models with matching ones, so that models == head holds. Then it times, as the
median of ``--runs`` runs of pytest in a subprocess, the suites taking turns (wall time of
the whole pytest process; on a SQLite file, or on the server of ``TEST_POSTGRESQL_URL`` /
``TEST_MYSQL_URL``, default the local ones as in tests/conftest.py, a new database per test),
after an untimed first run of each, with Python's bytecode caching on as users run it
(``--no-bytecode-cache``: both with PYTHONDONTWRITEBYTECODE):

- ours: the baked project's migration suite, tests/test_migrations.py: one head, the
  stairway without and with the data steps, models == head, and create_db.py == upgrade
  head; the synthetic revisions have no data steps (unless ``--data-steps``), so the
  stairway with data steps skips itself;
- pytest-alembic's four built-in tests (test_single_head_revision, test_upgrade,
  test_model_definitions_match_ddl, test_up_down_consistency) on the same history, run by
  an interpreter that has pytest<9 and pytest-alembic (0.13.1 fails to collect under
  pytest 9): ``--pytest-alembic-python PATH``, else this one if it qualifies. Without one,
  that row says "not measured" and why. Its ``alembic_engine`` is its best honest setup:
  on a server a plain pooled ``create_engine(url)``, as its users write it (our
  ``make_engine`` has no pool: a new connection per command cost it 3x on MariaDB); on
  SQLite our ``make_engine``, whose one transaction per run saves it a sync per statement.

    python benchmarks/bench_migration_suite.py --database postgresql --pytest-alembic-python /tmp/pa/bin/python

- the floor: one Python process importing what the suite imports (SQLAlchemy, Alembic,
  pytest, the driver and the project's models), plus the database's own client (psql,
  mariadb, sqlite3) replaying, each in one transaction on a new database, the SQL of the
  stairway the suite walks (for each revision its upgrade, its downgrade and its upgrade
  again, from ``alembic upgrade/downgrade --sql``; on PostgreSQL, for a revision
  of DDL on named tables only, its downgrade between a SAVEPOINT and a ROLLBACK TO it, as
  the suite walks it) and of create_db.py's build (``create_db.py --sql``); the times added
  up (making the databases left out);
- two bounds, in the same turns: the least SQL these checks need (every upgrade, then every
  downgrade, and create_db's build) replayed by the client, plus the imports; and the same
  run through Alembic in one process, checking nothing. Whether 3x faster than
  pytest-alembic is within reach of any suite making these checks is said from them.

A pytest-alembic interpreter: python -m venv /tmp/pa && /tmp/pa/bin/pip install 'pytest<9'
pytest-alembic==0.13.1 alembic sqlalchemy 'psycopg[binary]' pymysql. Targets, on 100
revisions: ours at least 3x faster than pytest-alembic and at most 2x the floor on each
database; on 1,000 revisions, at most 12x ours on 100 (run it with --revisions 1000).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from alembic.config import Config
from alembic.util import format_as_comma, template_to_file
from cookiecutter.main import cookiecutter
from sqlalchemy import make_url

TEMPLATE = Path(__file__).resolve().parents[1]
SERVERS = {  # as in tests/conftest.py
    "sqlite": None,
    "postgresql": os.environ.get("TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    "mysql": os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
TARGET_SECONDS = 3.0  # on SQLite
TARGET_SPEED_UP = 3.0  # on every database
TARGET_FLOOR_RATIO = 2.0  # on every database
DRIVERS = {"sqlite": "sqlite3", "postgresql": "psycopg", "mysql": "pymysql"}
# Run in the baked project: the stairway's SQL, as the suite walks it (migrations/testing/
# stairway.py), each revision in a transaction of its own: its upgrade, its downgrade, and
# its upgrade again; or, on PostgreSQL, for a revision whose upgrade and downgrade
# ran only DDL on named tables (changes.py), the downgrade between a SAVEPOINT and a
# ROLLBACK TO it. With the argument each-once: every upgrade (one run), then every downgrade (one run).
STAIRWAY_SQL = r"""
import io, re, sys
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from migrations.testing.changes import Changes

script = ScriptDirectory.from_config(Config("alembic.ini"))  # loaded once: what alembic --sql runs, per revision


def offline(upgrade, start, destination):
    # the SQL of one run, whether it ran only DDL on named tables, and the dialect's name
    buffer, seen, dialect = io.StringIO(), Changes(), []

    def steps(revision, context):
        dialect.append(context.dialect.name)
        run = context.impl._exec

        def noted(construct, *args, **kwargs):
            seen.note(construct)
            return run(construct, *args, **kwargs)

        context.impl._exec = noted
        return script._upgrade_revs(destination, revision) if upgrade else script._downgrade_revs(destination, revision)

    config = Config("alembic.ini", output_buffer=buffer)
    with EnvironmentContext(config, script, fn=steps, as_sql=True, starting_rev=start, destination_rev=destination):
        script.run_env()
    return buffer.getvalue(), not seen.unread, dialect[0]


def bare(sql):
    return "\n".join(line for line in sql.splitlines() if line.strip() not in ("BEGIN;", "COMMIT;")) + "\n"


if sys.argv[1:] == ["each-once"]:
    head = script.get_current_head()
    sys.stdout.write(offline(True, None, "heads")[0] + offline(False, head, "base")[0])
    sys.exit()
for revision in reversed(list(script.walk_revisions("base", "heads"))):
    parent = revision.down_revision
    upgrade, made_read, dialect = offline(True, parent, revision.revision)
    downgrade, unmade_read, _ = offline(False, revision.revision, parent or "base")
    if made_read and unmade_read and dialect == "postgresql":
        walked = [upgrade, "SAVEPOINT stairway;", downgrade, "ROLLBACK TO SAVEPOINT stairway;"]
    else:  # a downgrade to base leaves the version table (its row deleted), as the stairway's does
        walked = [upgrade, downgrade, re.sub(r"CREATE TABLE alembic_version \(.*?\);", "", upgrade, flags=re.DOTALL)]
    sys.stdout.write("BEGIN;\n" + "".join(bare(part) for part in walked) + "COMMIT;\n")
"""
# Run in the baked project: the least any suite testing the revisions through Alembic runs,
# without a check: create_db's build on one new database, and on another every revision's
# upgrade (one run) and then every downgrade (one run), as env.py runs them.
THROUGH_ALEMBIC = r"""
import gc, sys
gc.disable()  # as the suite collects (migrations/testing/collector.py)
import pytest
from sqlalchemy import make_url
from create_db import create_db
from migrations.settings import make_engine
from migrations.testing.head_build import alembic_config_for
from migrations.testing.migrator import Migrator
from migrations.testing.schema import sqlite_driver_rows

built, walked = make_url(sys.argv[1]), make_url(sys.argv[2])
create_db(alembic_config_for(built))  # before any revision is imported, as the suite builds it
engine = make_engine(walked)
with engine.connect() as connection:
    if connection.dialect.name == "postgresql":  # as the suite's walk (tests/test_migrations.py)
        connection.exec_driver_sql("SET synchronous_commit = off")
        connection.commit()
    elif connection.dialect.name == "sqlite":
        sqlite_driver_rows(connection, "PRAGMA synchronous = OFF")
    migrator = Migrator(alembic_config_for(walked), connection)
    migrator.upgrade("heads")
    migrator.downgrade("base")
engine.dispose()
"""
# The least SQL that checking every downgrade needs: each upgrade and each downgrade once.
EACH_ONCE = "each upgrade and downgrade once"
# The target's anchor: pytest-alembic 0.13.1's four tests on this history took 9.5 s on a
# machine of this project's CI kind. Its speed varies from day to day (pytest-alembic has
# taken 4.9 s to 11.8 s here), so ours is also shown scaled to the anchor's speed.
ANCHOR_PYTEST_ALEMBIC_SECONDS = 9.5
PYTEST_ALEMBIC_TESTS = (
    "test_single_head_revision",
    "test_upgrade",
    "test_model_definitions_match_ddl",
    "test_up_down_consistency",
)
PYTEST_ALEMBIC_FILE = "tests/test_pytest_alembic_builtin.py"
PYTEST_ALEMBIC_MODULE = f'''"""pytest-alembic's built-in tests on this project, for the benchmark."""

import pytest
from pytest_alembic.tests import {", ".join(PYTEST_ALEMBIC_TESTS)}  # noqa: F401
from sqlalchemy import create_engine

from migrations.settings import make_engine


@pytest.fixture
def alembic_engine(database_url):
    """A new database per test, as our suite has (the database_url fixture). On a server, a
    plain pooled engine, as pytest-alembic's users make it; on SQLite, the project's engine,
    one transaction per run (a plain one commits, and syncs, after every DDL statement)."""
    sqlite = database_url.get_backend_name() == "sqlite"
    engine = make_engine(database_url) if sqlite else create_engine(database_url)
    yield engine
    engine.dispose()
'''
MODEL = """

class Table{number:03d}(Base):
    __tablename__ = "table_{number:03d}"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(50), index=True)
"""
UPGRADE = """op.create_table(
        "{table}",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_{table}")),
    )
    op.create_index(op.f("ix_{table}_name"), "{table}", ["name"], unique=False)"""
DOWNGRADE = """op.drop_index(op.f("ix_{table}_name"), table_name="{table}")
    op.drop_table("{table}")"""


def bake(output_dir: Path, database: str) -> Path:
    """The project for ``database``, baked with cookiecutter's Python API."""
    context = {"database": database}
    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(output_dir), extra_context=context))


def write_synthetic_history(project: Path, count: int, data_steps: bool = False) -> list[str]:
    """Replace the example history and models: ``count`` revisions, one table and index each
    (and with ``data_steps``, data steps that insert a row into that table and delete it)."""
    versions = project / "migrations" / "versions"
    for old in versions.glob("*.py"):
        old.unlink()
    revisions: list[str] = []
    created = datetime(2024, 1, 1)
    for number in range(count):
        table = f"table_{number:03d}"
        revision = hashlib.sha256(f"synthetic {number}".encode()).hexdigest()[:12]
        template_to_file(
            project / "migrations" / "script.py.mako",
            versions / f"{created:%Y%m%d}_{revision}_create_{table}.py",
            "utf-8",
            up_revision=revision,
            down_revision=revisions[-1] if revisions else None,
            branch_labels=None,
            depends_on=None,
            create_date=created,
            comma=format_as_comma,
            message=f"create {table}",
            imports="",
            upgrades=UPGRADE.format(table=table),
            downgrades=DOWNGRADE.format(table=table),
        )
        if data_steps:
            path = versions / f"{created:%Y%m%d}_{revision}_create_{table}.py"
            path.write_text(add_data_steps(path.read_text(), table))
        revisions.append(revision)
    write_models(next(project.glob("*/models.py")), count)
    return revisions


def add_data_steps(source: str, table: str) -> str:
    """Fill the empty data_upgrades()/data_downgrades() that script.py.mako writes."""
    for function, sql in (
        ("data_upgrades", f"INSERT INTO {table} (name) VALUES ('synthetic')"),
        ("data_downgrades", f"DELETE FROM {table} WHERE name = 'synthetic'"),
    ):
        empty = re.compile(rf'(def {function}\(\) -> None:\n    """[^\n]*"""\n)    pass\n')
        source, found = empty.subn(rf'\1    op.execute("{sql}")\n', source)
        if found != 1:
            raise SystemExit(f"script.py.mako's {function}() is not the expected empty function")
    return source


def write_models(models: Path, count: int) -> None:
    """Keep models.py up to its Base class (imports, MetaData, naming convention), then one
    mapped class per synthetic table in place of the example's models and declared views."""
    text = models.read_text()
    first_model = re.search(r"^class (?!Base\b)\w+\(Base\):", text, flags=re.MULTILINE)
    if first_model is None:
        raise SystemExit(f"{models}: no model class after Base to replace")
    preamble = text[: first_model.start()].rstrip() + "\n\n"
    models.write_text(preamble + "".join(MODEL.format(number=number) for number in range(count)))


def check_history(project: Path, revisions: list[str]) -> None:
    """Load the new history with the baked project's migrations/testing/stairway.py: every revision, in order."""
    sys.path.insert(0, str(project))
    try:
        stairway = importlib.import_module("migrations.testing.stairway")
        if not Path(stairway.__file__).is_relative_to(project):
            raise SystemExit(f"imported {stairway.__file__}, not the baked project's migrations/testing/stairway.py")
        script = stairway.load_script(Config(str(project / "alembic.ini")))
        found = [revision.revision for revision in stairway.revisions_base_to_head(script)]
    finally:
        sys.path.remove(str(project))
    if found != revisions:
        raise SystemExit(f"the synthetic history did not load as written: {len(found)} of {len(revisions)} revisions")


@dataclass
class Timing:
    label: str
    outcome: str  # pytest's counts, e.g. "2 passed, 1 skipped"
    seconds: list[float]
    cpu_seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def row(self) -> str:
        """Its line in the report's table."""
        return (
            f"{self.label:<42} {self.outcome:<20} {self.median:>6.2f}s {min(self.seconds):>6.2f}s "
            f"{max(self.seconds):>6.2f}s {statistics.median(self.cpu_seconds):>9.2f}s"
        )


@dataclass
class Suite:
    label: str
    command: list[str]
    run: Callable[[], tuple[float, str]] | None = None  # instead of a pytest command: (seconds, outcome)
    forget_first: Callable[[], None] = lambda: None  # the untimed first run of ``run``


class Floor:
    """The floor on one database: the imports, and the client replaying the stairway's SQL and
    create_db's build, each on a new database (see the module's docstring)."""

    def __init__(self, project: Path, database: str, folder: Path) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_create_db import Server

        self.project, self.server = project, Server(database, folder)
        self.package = next(project.glob("*/models.py")).parent.name
        # the collector off, as the suite collects (migrations/testing/collector.py): it only adds time here
        self.imports = (
            f"import gc; gc.disable(); import sqlalchemy, alembic, pytest, {DRIVERS[database]}, {self.package}.models"
        )
        scratch = self.server.new()
        try:
            env = {**os.environ, "DATABASE_URL": scratch}
            self.scripts = {}
            for part, command in (
                ("the stairway's SQL", [sys.executable, "-c", STAIRWAY_SQL]),
                ("create_db's SQL", [sys.executable, "create_db.py", "--sql"]),
                (EACH_ONCE, [sys.executable, "-c", STAIRWAY_SQL, "each-once"]),
            ):
                result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=3600)
                if result.returncode != 0:
                    raise SystemExit(f"the floor: {part} could not be written:\n{result.stderr[-3000:]}")
                path = folder / f"{len(self.scripts)}.sql"
                # PostgreSQL: the stairway's revisions each in a transaction of their own, as the
                # suite commits them (in one, 1,000 revisions run out of max_locks_per_transaction)
                own = database == "postgresql" and part != "create_db's SQL"
                path.write_text(result.stdout if own else self.server.floor_script(result.stdout))
                self.scripts[part] = path
        finally:
            self.server.drop(scratch)
        self.parts: dict[str, list[float]] = {}

    def forget_first(self) -> None:
        for values in self.parts.values():
            values.pop(0)

    def run(self) -> tuple[float, str]:
        """The floor: the imports, the stairway's SQL and create_db's."""
        return self._replay(("the stairway's SQL", "create_db's SQL")), "floor"

    def run_bound(self) -> tuple[float, str]:
        """The least any suite making these checks could take: the imports, and the least SQL
        they need (each upgrade and each downgrade once, and create_db's build)."""
        return self._replay((EACH_ONCE, "create_db's SQL"), "bound: "), "bound"

    def run_through_alembic(self) -> tuple[float, str]:
        """The least any suite running the revisions through Alembic could take: one process
        importing, building create_db's database and running each upgrade and each downgrade
        once through env.py, checking nothing (THROUGH_ALEMBIC)."""
        from bench_create_db import timed

        built, walked = self.server.new(), self.server.new()
        try:
            command = [sys.executable, "-c", THROUGH_ALEMBIC, built, walked]
            env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "PYTHONPATH")}
            return timed(command, self.project, env), "bound"
        finally:
            self.server.drop(built)
            self.server.drop(walked)

    def _replay(self, parts: tuple[str, ...], prefix: str = "") -> float:
        from bench_create_db import timed

        seconds = {f"{prefix}imports": timed([sys.executable, "-c", self.imports], self.project, dict(os.environ))}
        for part in parts:
            url = self.server.new()
            try:
                command, env, stdin = self.server.client_command(url, self.scripts[part])
                if self.server.database == "postgresql" and part != "create_db's SQL":
                    command.remove("--single-transaction")
                replaying = f"{prefix}{self.server.client_name} replaying {part}"
                seconds[replaying] = timed(command, self.project, env, stdin)
            finally:
                self.server.drop(url)
        for part, value in seconds.items():
            self.parts.setdefault(part, []).append(value)
        return sum(seconds.values())


def pytest_command(python: str, test_file: str, plugins: tuple[str, ...]) -> list[str]:
    """``python -m pytest test_file``, with only ``plugins`` loaded (see ``time_suites``)."""
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    for plugin in plugins:
        command += ["-p", plugin]
    return [*command, test_file]


def time_suites(
    project: Path, suites: list[Suite], runs: int, server: str | None, bytecode: bool = True, must_pass: bool = True
) -> list[Timing]:
    """Wall time of each suite's pytest process in the project, ``runs`` times, the suites taking
    turns (this machine's speed drifts from minute to minute: in turns, both see the same
    drift), after an untimed first run of each (which writes the bytecode caches, as a user's
    first run does); every run must pass. ``bytecode``: Python's default, as users run it;
    False runs both with PYTHONDONTWRITEBYTECODE (every revision file compiled every run).

    Plugins are not auto-loaded (this interpreter may have the template's own, such as
    pytest-cookies, which the baked project does not use): only those given, with ``-p``.
    ``must_pass=False``: a run whose tests fail is timed too (a real history's faults), and
    its outcome shown; one that pytest could not run still stops the benchmark.
    """
    env = {key: value for key, value in os.environ.items() if key not in ("TEST_DATABASE_URL", "DATABASE_URL")}
    env.pop("PYTHONPATH", None)
    if server is not None:
        env["TEST_DATABASE_URL"] = server
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    timings = [Timing(suite.label, "", [], []) for suite in suites]
    for round_ in range(runs + 1):
        for suite, timing in zip(suites, timings, strict=True):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            if suite.run is not None:
                seconds, timing.outcome = suite.run()
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                timing.seconds.append(seconds)
                timing.cpu_seconds.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
                if round_ == 0:
                    timing.seconds.pop()
                    timing.cpu_seconds.pop()
                    suite.forget_first()
                continue
            start = time.perf_counter()
            result = subprocess.run(suite.command, cwd=project, env=env, capture_output=True, text=True, timeout=900)
            timing.seconds.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            timing.cpu_seconds.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            summary = re.search(r"^=*\s*(\d+ (?:passed|failed).*?) in [\d.]+s", result.stdout, flags=re.MULTILINE)
            if summary is None or (must_pass and result.returncode != 0):
                output = (result.stdout + result.stderr).strip()
                raise SystemExit(f"{suite.label}: pytest failed (exit {result.returncode}):\n{output[-3000:]}")
            timing.outcome = summary.group(1)
            if round_ == 0:  # the untimed first run
                timing.seconds.pop()
                timing.cpu_seconds.pop()
    return timings


def pytest_alembic_problem(python: str) -> tuple[str | None, str | None]:
    """Why this interpreter cannot run pytest-alembic's tests (None when it can), and its version."""
    probe = (
        "import importlib.metadata as m, alembic, sqlalchemy, pytest, pytest_alembic;"
        "print(pytest.__version__, m.version('pytest-alembic'))"
    )
    try:
        result = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)
    except OSError as error:
        return f"cannot run {python}: {error.strerror}", None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{python} cannot import pytest-alembic and its dependencies ({last})", None
    pytest_version, version = result.stdout.split()
    if int(pytest_version.split(".")[0]) >= 9:
        problem = f"{python} has pytest {pytest_version}: pytest-alembic {version} fails to collect under pytest 9"
        return problem, version
    return None, version


def print_verdicts(database: str, ours: float, theirs: float | None) -> None:
    """Ours against the targets: at least TARGET_SPEED_UP times faster than pytest-alembic; on
    SQLite also <= TARGET_SECONDS, here and at the speed the anchor was measured at."""
    if theirs is not None:
        verdict = "met" if theirs / ours >= TARGET_SPEED_UP else "NOT met"
        print(
            f"target: ours at least {TARGET_SPEED_UP:g}x faster than pytest-alembic: {verdict} here "
            f"({theirs / ours:.1f}x: {ours:.2f} s against {theirs:.2f} s)"
        )
    if database != "sqlite":
        return
    verdict = "met" if ours <= TARGET_SECONDS else "NOT met"
    print(f"target for ours on SQLite: <= {TARGET_SECONDS:g} s: {verdict} here ({ours:.2f} s)")
    if theirs is not None:
        scaled = ours * ANCHOR_PYTEST_ALEMBIC_SECONDS / theirs
        verdict = "met" if scaled <= TARGET_SECONDS else "NOT met"
        print(
            f"at the anchor's speed (pytest-alembic {ANCHOR_PYTEST_ALEMBIC_SECONDS:g} s there, "
            f"{theirs:.2f} s here): ours {scaled:.2f} s, {verdict}"
        )


def print_bound(theirs: float, bound: float, through_alembic: float) -> None:
    """Whether any suite making our checks could be TARGET_SPEED_UP times faster than
    pytest-alembic: it must at least import what the suite imports and run each upgrade and
    each downgrade once, and create_db's build. Two bounds: that SQL replayed by the client;
    and that run through Alembic, as a suite testing the revisions must run them (their code
    is what it tests), checking nothing."""
    needed = theirs / TARGET_SPEED_UP
    print(f"bound: {TARGET_SPEED_UP:g}x faster than pytest-alembic means <= {needed:.2f} s")
    for what, seconds, who in (
        ("the least SQL these checks need replayed by the client, plus the imports", bound, "any suite"),
        ("the same run through Alembic, checking nothing", through_alembic, "any suite running Alembic"),
    ):
        verdict = "within reach" if seconds <= needed else f"out of reach for {who} making these checks"
        print(f"  {what}: {seconds:.2f} s, pytest-alembic / it {theirs / seconds:.2f}: {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=list(SERVERS), default="sqlite", help="default: sqlite")
    parser.add_argument("--revisions", type=int, default=100, help="length of the synthetic history (default 100)")
    parser.add_argument("--runs", type=int, default=5, help="pytest runs per suite; the median is shown (default 5)")
    parser.add_argument(
        "--pytest-alembic-python",
        metavar="PATH",
        help="a python with pytest<9 and pytest-alembic 0.13.1 installed (default: this interpreter, if it has them)",
    )
    parser.add_argument(
        "--data-steps",
        action="store_true",
        help="give every synthetic revision data steps (insert a row, delete it), so the data stairway runs too",
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run both suites with PYTHONDONTWRITEBYTECODE (default: Python's default, caching on, as users run it)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the baked project and print where it is")
    args = parser.parse_args(argv)

    where = Path(tempfile.mkdtemp(prefix="bench-migrations-"))
    try:
        project = bake(where, args.database)
        revisions = write_synthetic_history(project, args.revisions, args.data_steps)
        check_history(project, revisions)
        (project / PYTEST_ALEMBIC_FILE).write_text(PYTEST_ALEMBIC_MODULE)
        load_before = " ".join(f"{load:.2f}" for load in os.getloadavg())

        ours = "tests/test_migrations.py"
        suites = [Suite(f"ours: {ours}", pytest_command(sys.executable, ours, plugins=()))]
        pytest_alembic_python = args.pytest_alembic_python or sys.executable
        problem, version = pytest_alembic_problem(pytest_alembic_python)
        label = f"pytest-alembic {version or '0.13.1'}: 4 built-in tests"
        if problem is None:
            plugins = ("pytest_alembic.plugin",)  # what its entry point would load
            suites.append(Suite(label, pytest_command(pytest_alembic_python, PYTEST_ALEMBIC_FILE, plugins)))
        floor = Floor(project, args.database, where)
        suites.append(Suite(f"floor: {floor.server.client_name} + imports", [], floor.run, floor.forget_first))
        suites.append(Suite("bound: the least SQL + imports", [], floor.run_bound, lambda: None))
        suites.append(Suite("bound: through Alembic, no check", [], floor.run_through_alembic, lambda: None))
        timings = time_suites(project, suites, args.runs, SERVERS[args.database], not args.no_bytecode_cache)
        through_alembic = timings.pop()
        bound = timings.pop()

        history = f"{args.revisions} revisions (one table + one index each{', and data steps' * args.data_steps})"
        server = SERVERS[args.database]
        on = "a SQLite file" if server is None else make_url(server).render_as_string(hide_password=True)
        print(
            f"Migration test suites on a synthetic history of {history} on {on}: wall time of the "
            f"whole pytest process, median of {args.runs} runs after an untimed first one, the suites taking turns "
            f"(load average before: {load_before})"
        )
        caching = "off (--no-bytecode-cache)" if args.no_bytecode_cache else "on (Python's default, as users run it)"
        print(f"bytecode caching: {caching}; both suites run the same way")
        print(f"{'suite':<42} {'tests':<20} {'median':>7} {'min':>7} {'max':>7} {'CPU median':>10}")
        for timing in timings:
            print(timing.row())
        for part, values in floor.parts.items():
            if not part.startswith("bound: "):
                print(f"  floor: {part:<40} {'':<11} {statistics.median(values):>6.2f}s")
        print(bound.row())
        for part, values in floor.parts.items():
            if part.startswith("bound: "):
                print(f"  {part:<47} {'':<11} {statistics.median(values):>6.2f}s")
        print(through_alembic.row())
        if problem is not None:
            print(f"{label:<42} not measured: {problem}")
        ours_median, floor_median = timings[0].median, timings[-1].median
        verdict = "met" if ours_median <= TARGET_FLOOR_RATIO * floor_median else "NOT met"
        print(f"ours / floor: {ours_median / floor_median:.2f} (target <= {TARGET_FLOOR_RATIO:g}: {verdict})")
        if "skipped" in timings[0].outcome:
            print("ours: the stairway with data steps skipped itself: no synthetic revision has any (see --data-steps)")
        if args.data_steps or args.revisions != 100:
            print("the targets apply to the anchor's history: 100 revisions, no data steps")
        else:
            print_verdicts(args.database, timings[0].median, timings[1].median if problem is None else None)
            if problem is None:
                print_bound(timings[1].median, bound.median, through_alembic.median)
        print(f"ours on {args.revisions} revisions: {timings[0].median:.2f} s (for --revisions 1000 against 100)")
        if args.keep:
            print(f"baked project kept in {project}")
    finally:
        if not args.keep:
            shutil.rmtree(where, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
