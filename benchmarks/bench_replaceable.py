"""Benchmark: autogenerate for 200 declared views and functions on PostgreSQL.

Bakes the PostgreSQL project into a temporary folder with cookiecutter and appends 100
views and 100 plpgsql functions to its models.py, declared with ``View(...)`` and
``Function(...)`` (views read ``customer`` with varied WHERE clauses, 30 of them read other
declared views, some two levels deep; functions take one or two typed arguments and return
integer). It creates a fresh, uniquely named database on the server (dropped at the end,
always), runs ``alembic upgrade head`` on it, and then times, as the median of ``--runs``:

1. first autogenerate: ``alembic revision --autogenerate -m objects``. Every run must write
   exactly one file with 100 ``op.create_view`` and 100 ``op.create_sp`` (and nothing
   else in its upgrade); the file is deleted before the next run.
2. nothing changed: that revision is applied once, then ``alembic revision --autogenerate
   -m nothing`` must write no file, every run (a file is a false positive: the benchmark
   fails).

Each is measured three ways:
- CLI: wall time of ``python -m alembic ...`` in a subprocess (DATABASE_URL set), as a user
  runs it: interpreter start-up, imports, the comparison, writing and formatting the file
  (the project's post-write hook runs ruff when it is installed);
- in-process: ``alembic.command.revision(config, autogenerate=True)`` in this (warm)
  interpreter, so start-up and imports are left out;
- compare only: ``alembic.autogenerate.produce_migrations()`` on an open connection, the
  comparison alone (tables and declared objects), nothing rendered or written.

The target is checked against the CLI figure. The alembic_utils 0.8.8 figures are the
anchor measured earlier on the same 200 objects; they are printed, not re-run. Wall times
depend on how busy the machine is: the load average is printed with the results, beside
the CLI's CPU time, which is less sensitive to it.

    python benchmarks/bench_replaceable.py
    python benchmarks/bench_replaceable.py --runs 9 --url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Needs the template's test dependencies (cookiecutter, alembic, sqlalchemy, psycopg) and a
PostgreSQL server whose user may create databases.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.metadata
import io
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import alembic
import sqlalchemy
from alembic import command
from alembic.autogenerate import produce_migrations
from alembic.config import Config
from alembic.migration import MigrationContext
from cookiecutter.main import cookiecutter
from sqlalchemy import URL, create_engine, make_url, text

TEMPLATE = Path(__file__).resolve().parents[1]
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
VIEWS = 100
FUNCTIONS = 100
NO_CHANGES = "No schema changes detected"

FIRST = "first autogenerate (200 new objects)"
NOTHING = "autogenerate, nothing changed"
ANCHOR = {FIRST: 319.0, NOTHING: 22.9}  # alembic_utils 0.8.8, measured earlier on the same case
TARGET = {FIRST: 3.0, NOTHING: 1.0}


# --- The 200 declared objects ----------------------------------------------------------------


def view_sql(number: int) -> str:
    """A view on ``customer``; every third or so reads an earlier declared view instead."""
    kind = number % 10
    if kind == 0:
        return f"SELECT id, name FROM customer WHERE order_count > {number}"
    if kind == 1:
        return f"SELECT id, name, email FROM customer WHERE email LIKE '%@example{number}.com'"
    if kind == 2:
        return (
            f"SELECT id, name FROM customer\nWHERE order_count BETWEEN {number} AND {number + 10} AND name IS NOT NULL"
        )
    if kind == 3:
        return (
            "SELECT email, count(*) AS customers, sum(order_count) AS orders\n"
            "FROM customer WHERE email IS NOT NULL\n"
            f"GROUP BY email HAVING count(*) > {number % 7}"
        )
    if kind == 4:  # on a kind-0 view
        return f"SELECT id, name FROM bench_view_{number - 4:03d} WHERE name <> 'customer {number}'"
    if kind == 5:
        return (
            "SELECT id, upper(name) AS name_upper, coalesce(order_count, 0) AS orders\n"
            f"FROM customer WHERE coalesce(order_count, 0) < {number}"
        )
    if kind == 6:
        return (
            "SELECT id, name,\n"
            f"    CASE WHEN order_count >= {number} THEN 'gold' ELSE 'standard' END AS tier\n"
            "FROM customer"
        )
    if kind == 7:
        return (
            "SELECT id, name FROM customer\n"
            f"WHERE id IN (SELECT id FROM customer WHERE order_count % {number % 5 + 2} = 0)"
        )
    if kind == 8:  # on a kind-5 view
        return f"SELECT id, orders FROM bench_view_{number - 3:03d} WHERE orders > {number % 4}"
    # kind 9: on a kind-4 view, itself on a kind-0 view
    return (
        "SELECT v.id, v.name, c.email\n"
        f"FROM bench_view_{number - 5:03d} v JOIN customer c ON c.id = v.id\n"
        "WHERE c.email IS NOT NULL"
    )


def function_declaration(number: int) -> tuple[str, str]:
    """(name with signature, SQL after it) of a plpgsql function returning integer."""
    kind = number % 5
    name = f"bench_fn_{number:03d}"
    if kind == 0:
        signature = "min_orders integer"
        volatility, body = (
            "STABLE",
            (f"SELECT count(*) + {number} INTO result FROM customer WHERE order_count >= min_orders;\nRETURN result;"),
        )
    elif kind == 1:
        signature = "customer_name text, extra integer"
        volatility, body = (
            "STABLE",
            (
                "SELECT coalesce(max(order_count), 0) + extra INTO result\n"
                f"FROM customer WHERE name = customer_name OR name = 'customer {number}';\n"
                "RETURN result;"
            ),
        )
    elif kind == 2:
        signature = "domain varchar, min_orders bigint"
        volatility, body = (
            "STABLE",
            (
                "SELECT count(*) INTO result FROM customer\n"
                "WHERE email LIKE '%@' || domain AND order_count >= min_orders;\n"
                f"RETURN result * {number};"
            ),
        )
    elif kind == 3:
        signature = "customer_id integer, increment integer"
        volatility, body = (
            "VOLATILE",
            (
                f"UPDATE customer SET order_count = coalesce(order_count, 0) + increment + {number}\n"
                "WHERE id = customer_id\n"
                "RETURNING order_count INTO result;\n"
                "RETURN coalesce(result, -1);"
            ),
        )
    else:
        signature = "since numeric"
        volatility, body = (
            "STABLE",
            (
                "IF since IS NULL THEN\n"
                f"    RETURN {number};\n"
                "END IF;\n"
                "SELECT count(*) INTO result FROM customer WHERE order_count > since;\n"
                "RETURN result;"
            ),
        )
    indented = "\n".join(f"    {line}" for line in body.splitlines())
    sql = (
        "RETURNS integer AS $$\n"
        "DECLARE\n"
        "    result integer;\n"
        "BEGIN\n"
        f"{indented}\n"
        "END;\n"
        f"$$ LANGUAGE plpgsql {volatility}"
    )
    return f"{name}({signature})", sql


def declaration(variable: str, cls: str, name: str, sql: str) -> str:
    body = "\n".join(f"    {line}" for line in sql.splitlines())
    return f'{variable} = {cls}(\n    "{name}",\n    metadata,\n    """\n{body}\n    """,\n)'


def declarations() -> str:
    """Python source declaring the objects, as a user writes them in models.py."""
    lines = ["", "", "# --- Benchmark: 100 views and 100 functions (benchmarks/bench_replaceable.py) ---", ""]
    for number in range(VIEWS):
        lines.append(declaration(f"bench_view_{number:03d}", "View", f"bench_view_{number:03d}", view_sql(number)))
    for number in range(FUNCTIONS):
        lines.append(declaration(f"bench_fn_{number:03d}", "Function", *function_declaration(number)))
    return "\n".join(lines) + "\n"


# --- Project and database --------------------------------------------------------------------


def bake(output_dir: Path) -> Path:
    """The PostgreSQL project, baked with cookiecutter's Python API, with the 200 objects added."""
    project = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(output_dir),
            default_config=True,
            extra_context={"database": "postgresql"},
        )
    )
    models = next(project.glob("*/models.py"))
    with models.open("a") as file:
        file.write(declarations())
    return project


@contextmanager
def fresh_database(server: URL):
    """A new, uniquely named database on the server; dropped on the way out, whatever happens."""
    name = f"bench_replaceable_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar_one()
            number = connection.execute(text("SHOW server_version_num")).scalar_one()
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name), version
        finally:
            force = " WITH (FORCE)" if int(number) >= 130000 else ""
            with engine.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"{force}'))
    finally:
        engine.dispose()


# --- Running autogenerate ------------------------------------------------------------------


class BenchmarkError(Exception):
    """A run did something other than expected (a false positive, a missing object...)."""


@dataclass
class Project:
    path: Path
    url: URL
    package: str = field(init=False)

    def __post_init__(self) -> None:
        self.package = next(self.path.glob("*/models.py")).parent.name

    @property
    def versions(self) -> Path:
        return self.path / "migrations" / "versions"

    def revision_files(self) -> set[Path]:
        return set(self.versions.glob("*.py"))

    def alembic_cli(self, *args: str) -> tuple[str, float, float]:
        """``python -m alembic ARGS`` in the project, DATABASE_URL set: (output, wall s, CPU s).

        The CPU time is user + system of the process and its children (the post-write hook's
        ruff), which a busy machine inflates less than the wall time.
        """
        env = dict(os.environ, DATABASE_URL=self.url.render_as_string(hide_password=False))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "alembic", *args], cwd=self.path, env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise BenchmarkError(f"alembic {' '.join(args)} failed (exit {result.returncode}):\n{output[-3000:]}")
        return output, wall, cpu

    def config(self, stdout: io.StringIO) -> Config:
        config = Config(str(self.path / "alembic.ini"), stdout=stdout)
        config.attributes["database_url"] = self.url
        config.attributes["configure_logger"] = False
        return config

    @contextmanager
    def importable(self):
        """cwd and sys.path on the project, as the alembic command has them."""
        before = Path.cwd()
        sys.path.insert(0, str(self.path))
        os.chdir(self.path)
        try:
            yield
        finally:
            os.chdir(before)
            sys.path.remove(str(self.path))

    @contextmanager
    def in_process(self, how: str):
        """As ``importable``, with file descriptors 1 and 2 sent to a file while it runs.

        ``command.revision`` prints "Generating ..." and its post-write hook runs ruff in a
        subprocess that writes to the same descriptors; on a failure, that output is shown.
        """
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        with tempfile.TemporaryFile("w+") as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                with self.importable():
                    yield
            except Exception as error:
                sys.stdout.flush()
                sys.stderr.flush()
                sink.seek(0)
                raise BenchmarkError(f"{how}: {type(error).__name__}: {error}\n{sink.read()[-3000:]}") from error
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])

    def metadata(self):
        with self.importable():
            importlib.import_module("migrations.declared")  # registers the comparator
            return importlib.import_module(f"{self.package}.models").metadata


def upgrade_and_downgrade(source: str) -> tuple[str, str]:
    """The source of a revision's upgrade functions and of its downgrade functions.

    The project's script.py.mako splits each side into upgrade() -> schema_upgrades() and
    data_upgrades(); each side is the text of all of its functions.
    """
    sides: dict[str, list[str]] = {"upgrade": [], "downgrade": []}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            for side in sides:
                if node.name == side or node.name.endswith(f"_{side}s"):
                    sides[side].append(ast.get_source_segment(source, node) or "")
    return "\n".join(sides["upgrade"]), "\n".join(sides["downgrade"])


def check_first(project: Project, before: set[Path], how: str) -> Path:
    """Exactly one new file, holding exactly the 200 creates (and their drops in downgrade)."""
    new = project.revision_files() - before
    if len(new) != 1:
        raise BenchmarkError(f"{how}: expected one new revision file, found {len(new)}")
    path = new.pop()
    upgrade, downgrade = upgrade_and_downgrade(path.read_text())
    counts = {
        "op.create_view(": (upgrade.count("op.create_view("), VIEWS),
        "op.create_sp(": (upgrade.count("op.create_sp("), FUNCTIONS),
        "op.drop_view(": (downgrade.count("op.drop_view("), VIEWS),
        "op.drop_sp(": (downgrade.count("op.drop_sp("), FUNCTIONS),
    }
    wrong = {call: found for call, (found, expected) in counts.items() if found != expected}
    others = sorted(set(re.findall(r"\bop\.(\w+)\(", upgrade)) - {"create_view", "create_sp"})
    if wrong or others:
        raise BenchmarkError(f"{how}: {path.name} has {wrong or 'the right counts'}; other operations: {others}")
    missing = [
        name
        for name in [f"bench_view_{n:03d}" for n in range(VIEWS)] + [f"bench_fn_{n:03d}(" for n in range(FUNCTIONS)]
        if name not in upgrade
    ]
    if missing:
        raise BenchmarkError(f"{how}: {path.name} lacks {missing[:5]}...")
    return path


def check_nothing(project: Project, before: set[Path], output: str, how: str) -> None:
    new = project.revision_files() - before
    if new:
        names = ", ".join(path.name for path in sorted(new))
        excerpt = "\n".join(path.read_text()[:3000] for path in sorted(new))
        for path in new:
            path.unlink()
        raise BenchmarkError(f"{how}: false positive, nothing changed but it wrote {names}:\n{excerpt}")
    if NO_CHANGES not in output:
        raise BenchmarkError(f"{how}: expected {NO_CHANGES!r} in the output, got:\n{output[-2000:]}")


def first_cli(project: Project) -> tuple[float, float]:
    before = project.revision_files()
    _, wall, cpu = project.alembic_cli("revision", "--autogenerate", "-m", "objects")
    check_first(project, before, "CLI").unlink()
    return wall, cpu


def revision_in_process(project: Project, message: str) -> tuple[float, set[Path], str]:
    """Time ``command.revision(autogenerate=True)``: the seconds, the files before, its output."""
    before, stdout = project.revision_files(), io.StringIO()
    with project.in_process("in-process"):
        config = project.config(stdout)
        start = time.perf_counter()
        command.revision(config, message=message, autogenerate=True)
        seconds = time.perf_counter() - start
    return seconds, before, stdout.getvalue()


def first_in_process(project: Project) -> float:
    seconds, before, _ = revision_in_process(project, "objects")
    check_first(project, before, "in-process").unlink()
    return seconds


def nothing_cli(project: Project) -> tuple[float, float]:
    before = project.revision_files()
    output, wall, cpu = project.alembic_cli("revision", "--autogenerate", "-m", "nothing")
    check_nothing(project, before, output, "CLI")
    return wall, cpu


def nothing_in_process(project: Project) -> float:
    seconds, before, output = revision_in_process(project, "nothing")
    check_nothing(project, before, output, "in-process")
    return seconds


def compare_only(project: Project, expected_ops: int) -> float:
    """produce_migrations() alone, on a connection opened beforehand."""
    metadata = project.metadata()
    engine = create_engine(project.url)
    try:
        with project.in_process("compare only"), engine.connect() as connection:
            start = time.perf_counter()
            context = MigrationContext.configure(connection, opts={"target_metadata": metadata})
            script = produce_migrations(context, metadata)
            seconds = time.perf_counter() - start
    finally:
        engine.dispose()
    ops = script.upgrade_ops.ops
    if len(ops) != expected_ops:
        found = sorted({type(op).__name__ for op in ops})
        raise BenchmarkError(f"compare only: expected {expected_ops} operations, got {len(ops)} ({found})")
    return seconds


def samples(runs: int, measure: Callable[[], float]) -> list[float]:
    return [measure() for _ in range(runs)]


def cli_samples(runs: int, measure: Callable[[], tuple[float, float]], into: dict[str, list[float]]) -> None:
    """Wall and CPU time of ``runs`` CLI runs, into ``into["CLI"]`` and ``into["CLI, CPU"]``."""
    walls, cpus = zip(*(measure() for _ in range(runs)), strict=True)
    into["CLI"], into["CLI, CPU"] = list(walls), list(cpus)


# --- Report --------------------------------------------------------------------------------


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def report(runs: int, results: dict[str, dict[str, list[float]]], facts: dict[str, str]) -> bool:
    """Print the tables; True when both CLI medians meet their targets."""
    medians = {label: {how: statistics.median(values) for how, values in results[label].items()} for label in results}
    met = all(medians[label]["CLI"] <= TARGET[label] for label in (FIRST, NOTHING))
    print()
    table(
        [
            ["", f"alembic-cookbook (median of {runs})", "alembic_utils 0.8.8 (anchor measured earlier, not re-run)"]
            + ["target", ""],
            *(
                [label, seconds(medians[label]["CLI"]), f"{ANCHOR[label]:g} s", f"<= {TARGET[label]:g} s"]
                + ["met" if medians[label]["CLI"] <= TARGET[label] else "MISSED"]
                for label in (FIRST, NOTHING)
            ),
        ]
    )
    print()
    print(f"alembic-cookbook, where the time goes (median of {runs}):")
    hows = ["CLI", "CLI, CPU", "in-process", "compare only"]
    table([["", *hows], *([label] + [seconds(medians[label][how]) for how in hows] for label in (FIRST, NOTHING))])
    print()
    print("CLI: wall time of `python -m alembic revision --autogenerate ...` in the project: interpreter start-up,")
    print("  imports, comparison, writing the file and the post-write hook (ruff); the first table shows this figure")
    print("CLI, CPU: user + system CPU time of that process and its children")
    print("in-process: alembic.command.revision(config, autogenerate=True) in this warm interpreter")
    print("compare only: alembic.autogenerate.produce_migrations() on an open connection, nothing written")
    print("every run was checked: one file with 100 create_view + 100 create_sp, or no file at all")
    print()
    for label in (FIRST, NOTHING):
        for how, values in results[label].items():
            print(f"samples, {label}, {how}: {', '.join(f'{value:.3f}' for value in values)}")
    print()
    print(f"N = {runs} runs each")
    for name, value in facts.items():
        print(f"{name}: {value}")
    return met


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure; the median is printed (default 5)")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"PostgreSQL server URL (default {DEFAULT_URL})")
    parser.add_argument("--keep", action="store_true", help="keep the baked project folder")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    server = make_url(args.url)
    if server.get_backend_name() != "postgresql":
        parser.error("--url must be a PostgreSQL URL")

    load_before = load_average()
    folder = Path(tempfile.mkdtemp(prefix="bench_replaceable_"))
    try:
        path = bake(folder)
        print(f"baked {path} with {VIEWS} views and {FUNCTIONS} functions declared in its models.py")
        with fresh_database(server) as (url, server_version):
            print(f"database {url.database} on {server.render_as_string(hide_password=True)}")
            project = Project(path, url)
            project.alembic_cli("upgrade", "head")
            results: dict[str, dict[str, list[float]]] = {FIRST: {}, NOTHING: {}}

            print(f"timing: {FIRST} ...", flush=True)
            cli_samples(args.runs, lambda: first_cli(project), results[FIRST])
            results[FIRST]["in-process"] = samples(args.runs, lambda: first_in_process(project))
            results[FIRST]["compare only"] = samples(args.runs, lambda: compare_only(project, VIEWS + FUNCTIONS))

            before = project.revision_files()
            project.alembic_cli("revision", "--autogenerate", "-m", "objects")
            check_first(project, before, "the revision to apply")
            project.alembic_cli("upgrade", "head")

            print(f"timing: {NOTHING} ...", flush=True)
            cli_samples(args.runs, lambda: nothing_cli(project), results[NOTHING])
            results[NOTHING]["in-process"] = samples(args.runs, lambda: nothing_in_process(project))
            results[NOTHING]["compare only"] = samples(args.runs, lambda: compare_only(project, 0))
            # Alembic's own start-up in this project, comparing nothing: the floor of any CLI figure.
            floor = statistics.median(project.alembic_cli("heads")[1] for _ in range(args.runs))
    except BenchmarkError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

    facts = {
        "`alembic heads` in the same project (Alembic's start-up, nothing compared)": seconds(floor),
        "PostgreSQL": server_version,
        "Python": f"{platform.python_version()} ({platform.python_implementation()})",
        "Alembic": alembic.__version__,
        "SQLAlchemy": sqlalchemy.__version__,
        "psycopg": importlib.metadata.version("psycopg"),
        "CPUs": str(os.cpu_count()),
        "PYTHONDONTWRITEBYTECODE": "set (no .pyc cache)" if sys.dont_write_bytecode else "unset",
        "load average (1/5/15 min) before / after": f"{load_before}  /  {load_average()}",
    }
    report(args.runs, results, facts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
