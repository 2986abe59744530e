"""Benchmark: a fresh database at head, by create_db.py, beside `alembic upgrade head` and the floor.

Bakes a project per database with cookiecutter, replaces its example history with a
synthetic one of ``--revisions`` revisions (default 300) with churn (each revision creates
a table, adds a column to it and indexes that column; written from the project's own
script.py.mako) and its models with matching ones. Then, on each database
(``--database sqlite|postgresql|mysql|all``; SQLite is a file), as medians of ``--runs``
runs, the contenders taking turns run by run, each on a fresh empty database:

- ``alembic upgrade head``, and ``python create_db.py``: wall time of the process;
- the seed's naive recipe (the cookbook page's own code): import the models,
  ``Base.metadata.create_all(create_engine(url))``, ``command.stamp(Config("alembic.ini"),
  "head")``;
- the floor with the models imported: ``python -c "import sqlalchemy, alembic.command,
  <package>.models"`` (the collector off, as create_db.py runs: it only adds time to a short
  run) plus the database's own client (psql, mariadb, sqlite3) running the DDL create_db
  emits (``create_db.py --sql``) in one transaction; the two times added up. create_db must
  run the user's models to know the schema, so this is the floor that counts.
  Targets: create_db <= 1.2x this floor, and faster than the naive recipe.
- for reference, the floor without the models (``import sqlalchemy, alembic.command``), and
  the floor with the models whose Python also ends with ``gc.freeze()``, as create_db.py does:
  its exit's collection, which walks every object still alive, skipped too.

Python's bytecode caching is on, as users run it (the first, untimed round writes it);
``--no-bytecode-cache`` runs every process with PYTHONDONTWRITEBYTECODE instead.

In-process (a test fixture calling create_db() again and again in one process), medians
of ``--calls`` calls taking turns, each on a fresh database made outside the timing:

- ``create_db()`` after its first call, beside a bare ``metadata.create_all()`` in one
  transaction on the same server (and with ``checkfirst=False``). Target: <= 1.2x the bare one;
- per test (each inserting a row): the ``database_at_head`` fixture's copy (made, and
  dropped or on MariaDB given back; MariaDB's first copy, a replay, shown apart), beside a
  fresh database built by create_db() (made, built and dropped).

    python benchmarks/bench_create_db.py --database all
    python benchmarks/bench_create_db.py --database postgresql --revisions 100 --runs 3

Servers: ``TEST_POSTGRESQL_URL`` (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres)
and ``TEST_MYSQL_URL`` (default mysql+pymysql://root@127.0.0.1:3306/test), as the template's tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.2
SERVERS = {
    "postgresql": os.environ.get("TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    "mysql": os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
MODEL = """

class Table{number:03d}(Base):
    __tablename__ = "table_{number:03d}"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(50))
    note: Mapped[str | None] = mapped_column(String(50), index=True)
"""
UPGRADE = """op.create_table(
        "{table}",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_{table}")),
    )
    op.add_column("{table}", sa.Column("note", sa.String(length=50), nullable=True))
    op.create_index(op.f("ix_{table}_note"), "{table}", ["note"], unique=False)"""
DOWNGRADE = """op.drop_index(op.f("ix_{table}_note"), table_name="{table}")
    op.drop_column("{table}", "note")
    op.drop_table("{table}")"""


def bake(output_dir: Path, database: str) -> Path:
    """A project for ``database``, baked with cookiecutter's Python API."""
    from cookiecutter.main import cookiecutter

    baked = cookiecutter(
        str(TEMPLATE),
        no_input=True,
        output_dir=str(output_dir),
        default_config=True,
        extra_context={"database": database},
    )
    return Path(baked)


def write_history_with_churn(project: Path, count: int) -> str:
    """Replace the example history and models: ``count`` revisions, each creating a table,
    adding a column to it and indexing that column; models to match. Returns the head."""
    from alembic.util import format_as_comma, template_to_file

    versions = project / "migrations" / "versions"
    for old in versions.glob("*.py"):
        old.unlink()
    previous = None
    created = datetime(2024, 1, 1)
    for number in range(count):
        table = f"table_{number:03d}"
        revision = hashlib.sha256(f"churn {number}".encode()).hexdigest()[:12]
        template_to_file(
            project / "migrations" / "script.py.mako",
            versions / f"{created:%Y%m%d}_{revision}_{table}.py",
            "utf-8",
            up_revision=revision,
            down_revision=previous,
            branch_labels=None,
            depends_on=None,
            create_date=created,
            comma=format_as_comma,
            message=f"{table}, its note column and index",
            imports="",
            upgrades=UPGRADE.format(table=table),
            downgrades=DOWNGRADE.format(table=table),
        )
        previous = revision
    models = next(project.glob("*/models.py"))
    text = models.read_text()
    first_model = re.search(r"^class (?!Base\b)\w+\(Base\):", text, flags=re.MULTILINE)
    if first_model is None:
        raise SystemExit(f"{models}: no model class after Base to replace")
    preamble = text[: first_model.start()].rstrip() + "\n\n"
    models.write_text(preamble + "".join(MODEL.format(number=number) for number in range(count)))
    return previous


# --- Databases, and the database's own client ------------------------------------------


class Server:
    """Fresh empty databases on one server (SQLite: file names in ``folder``), and its client."""

    def __init__(self, database: str, folder: Path) -> None:
        from sqlalchemy import make_url

        self.database = database
        self.folder = folder
        self.url = make_url(SERVERS[database]) if database in SERVERS else make_url(f"sqlite:///{folder}/x.sqlite")
        self.client_name = {"postgresql": "psql", "mysql": "mariadb", "sqlite": "sqlite3"}[database]
        self.client = shutil.which(self.client_name)
        if self.client is None and database != "sqlite":
            raise SystemExit(f"{self.client_name} is not installed: the floor needs the database's own client")

    def _admin(self):
        from sqlalchemy import create_engine, pool

        maintenance = {"postgresql": "postgres", "mysql": "information_schema"}[self.database]
        engine = create_engine(self.url.set(database=maintenance), poolclass=pool.NullPool)
        return engine.execution_options(isolation_level="AUTOCOMMIT")

    def new(self) -> str:
        """A new empty database (SQLite: a file name, the file not made yet)."""
        name = f"bench_{uuid.uuid4().hex[:12]}"
        if self.database == "sqlite":
            return f"sqlite:///{self.folder / f'{name}.sqlite'}"
        with self._admin().connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        from sqlalchemy import make_url

        name = make_url(url).database
        if self.database == "sqlite":
            Path(name).unlink(missing_ok=True)
            return
        with self._admin().connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")

    def client_command(self, url: str, script: Path) -> tuple[list[str], dict[str, str], Path | None]:
        """The client running ``script`` in one transaction: (command, environment, stdin file)."""
        from sqlalchemy import make_url

        parsed = make_url(url)
        env = dict(os.environ)
        if self.database == "postgresql":
            if parsed.password:
                env["PGPASSWORD"] = parsed.password
            command = [self.client, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", str(script)]
            command += ["-h", parsed.host or "localhost", "-p", str(parsed.port or 5432)]
            return [*command, "-U", parsed.username or "postgres", "-d", parsed.database], env, None
        if self.database == "mysql":
            if parsed.password:
                env["MYSQL_PWD"] = parsed.password
            command = [self.client, "-h", parsed.host or "localhost", "-P", str(parsed.port or 3306)]
            return [*command, "-u", parsed.username or "root", parsed.database], env, script
        if self.client is not None:
            return [self.client, "-bail", parsed.database], env, script
        # No sqlite3 command: Python's sqlite3 module runs the script (BEGIN ... COMMIT in it).
        run = "import sqlite3, sys; sqlite3.connect(sys.argv[1]).executescript(open(sys.argv[2]).read())"
        return [sys.executable, "-c", run, parsed.database, str(script)], env, None

    def floor_script(self, ddl: str) -> str:
        """create_db's DDL (``--sql``) as one transaction for the client: Alembic's own
        BEGIN/COMMIT lines out, one around it all (psql: --single-transaction)."""
        lines = [line for line in ddl.splitlines() if line.strip() not in ("BEGIN;", "COMMIT;")]
        body = "\n".join(lines) + "\n"
        if self.database == "postgresql":
            return body
        begin = "START TRANSACTION;" if self.database == "mysql" else "BEGIN;"
        return f"{begin}\n{body}COMMIT;\n"


def check_at_head(url: str, tables: int, head: str) -> None:
    """The run built every model table and stamped head, or the benchmark stops."""
    from sqlalchemy import create_engine, inspect, pool, text

    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
        missing = [f"table_{number:03d}" for number in range(tables) if f"table_{number:03d}" not in names]
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if missing or version != [head]:
        raise SystemExit(f"{url}: not at head ({len(missing)} tables missing, alembic_version {version})")


# --- Timing, the contenders taking turns --------------------------------------------------


@dataclass
class Contender:
    label: str
    parts: dict[str, list[float]] = field(default_factory=dict)  # seconds of each part, per run

    @property
    def seconds(self) -> list[float]:
        return [sum(run) for run in zip(*self.parts.values(), strict=True)]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def timed(command: list[str], cwd: Path, env: dict[str, str], stdin: Path | None = None) -> float:
    """Wall time of one process; it must succeed."""
    start = time.perf_counter()
    with open(stdin or os.devnull, "rb") as source:
        result = subprocess.run(command, cwd=cwd, env=env, stdin=source, capture_output=True, timeout=1800)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        raise SystemExit(f"{' '.join(command[:4])} ... failed (exit {result.returncode}):\n{output[-3000:]}")
    return elapsed


# The cookbook page's recipe 1, as written there (the seed), on the project's models.
NAIVE_RECIPE = """
import os
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from {package}.models import Base

engine = create_engine(os.environ["DATABASE_URL"])
Base.metadata.create_all(engine)
command.stamp(Config("alembic.ini"), "head")
"""


def python_env(url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("TEST_DATABASE_URL", "PYTHONPATH")}
    env["DATABASE_URL"] = url
    return env


def time_processes(project: Path, server: Server, head: str, tables: int, runs: int) -> list[Contender]:
    """`alembic upgrade head`, `python create_db.py` and the floor, taking turns, each on a fresh
    database; a first round warms up (caches, bytecode) and is not counted."""
    scratch = server.new()
    result = subprocess.run(
        [sys.executable, "create_db.py", "--sql"], cwd=project, env=python_env(scratch), capture_output=True, text=True
    )
    server.drop(scratch)
    if result.returncode != 0:
        raise SystemExit(f"create_db.py --sql failed:\n{result.stderr[-3000:]}")
    script = server.folder / f"floor-{server.database}.sql"
    script.write_text(server.floor_script(result.stdout))

    upgrade = Contender("alembic upgrade head")
    create_db = Contender("python create_db.py")
    naive = Contender("the seed's naive recipe")
    floor = Contender("floor")  # the models imported: the one that counts
    without_models = Contender("floor without the models")
    # create_db.py freezes what is alive before it exits (its exit's collection skipped): a
    # floor whose process does the same, for reference (the target is judged on the floor above)
    frozen = Contender("floor, its exit's collection skipped too")
    package = next(project.glob("*/models.py")).parent.name
    naive_recipe = NAIVE_RECIPE.format(package=package)

    def run_upgrade(url: str) -> None:
        upgrade.parts.setdefault("", []).append(
            timed([sys.executable, "-m", "alembic", "upgrade", "head"], project, python_env(url))
        )

    def run_create_db(url: str) -> None:
        create_db.parts.setdefault("", []).append(timed([sys.executable, "create_db.py"], project, python_env(url)))

    def run_naive(url: str) -> None:
        naive.parts.setdefault("", []).append(timed([sys.executable, "-c", naive_recipe], project, python_env(url)))

    def run_floor(url: str, contender: Contender, imported: str, then: str = "") -> None:
        code = f"import gc; gc.disable(); import {imported}{then}"
        imports = timed([sys.executable, "-c", code], project, python_env(url))
        command, env, stdin = server.client_command(url, script)
        contender.parts.setdefault(f"import {imported}", []).append(imports)
        ddl = timed(command, project, env, stdin)
        contender.parts.setdefault(f"{server.client_name} running the DDL", []).append(ddl)

    def run_floor_with_models(url: str) -> None:
        run_floor(url, floor, f"sqlalchemy, alembic.command, {package}.models")

    def run_floor_without_models(url: str) -> None:
        run_floor(url, without_models, "sqlalchemy, alembic.command")

    def run_floor_frozen(url: str) -> None:
        run_floor(url, frozen, f"sqlalchemy, alembic.command, {package}.models", "; gc.freeze()")

    contenders = (run_upgrade, run_create_db, run_naive, run_floor_with_models, run_floor_without_models)
    for round_ in range(runs + 1):
        for run in (*contenders, run_floor_frozen):
            url = server.new()
            try:
                run(url)
                check_at_head(url, tables, head)
            finally:
                server.drop(url)
        if round_ == 0:  # the warm-up round
            for contender in (upgrade, create_db, naive, floor, without_models, frozen):
                contender.parts = {part: [] for part in contender.parts}
    return [upgrade, create_db, naive, floor, without_models, frozen]


# --- In-process: what a test fixture pays per database -----------------------------------


def worker(database: str, server_url: str, calls: int) -> None:
    """Run in the baked project's folder: create_db() again and again beside a bare create_all,
    then per test the database_at_head fixture's copy beside a create_db of its own; prints JSON."""
    sys.path.insert(0, os.getcwd())
    from alembic.config import Config
    from sqlalchemy import make_url

    from create_db import create_db
    from migrations.settings import make_engine, target_metadata
    from migrations.testing.fixtures import ALEMBIC_INI, Databases, HeadTemplate

    def config_for(url) -> Config:
        config = Config(ALEMBIC_INI)  # as the alembic_config fixture makes it
        config.attributes["database_url"] = url
        config.attributes["configure_logger"] = False
        return config

    def seconds(function, *args) -> float:
        start = time.perf_counter()
        function(*args)
        return time.perf_counter() - start

    def bare_create_all(url, checkfirst: bool) -> None:
        engine = make_engine(url)
        with engine.begin() as connection:
            metadata.create_all(connection, checkfirst=checkfirst)
        engine.dispose()

    folder = Path(tempfile.mkdtemp(prefix="bench-create-db-worker-"))
    databases = Databases(make_url(server_url), folder)
    results: dict[str, list[float]] = {"create_db()": [], "create_all": [], "create_all(checkfirst=False)": []}
    try:

        def build_with_create_db(url) -> None:
            create_db(config_for(url))

        url = databases.new()
        results["first create_db() in the process"] = [seconds(build_with_create_db, url)]
        metadata = target_metadata(config_for(url))
        databases.drop_all()
        for _ in range(calls):  # each on a fresh database, made and dropped outside the timing
            results["create_db()"].append(seconds(build_with_create_db, databases.new()))
            results["create_all"].append(seconds(bare_create_all, databases.new(), True))
            results["create_all(checkfirst=False)"].append(seconds(bare_create_all, databases.new(), False))
            databases.drop_all()

        template = None

        def build() -> None:
            nonlocal template
            template = HeadTemplate.build(make_url(server_url), folder)

        def use(url) -> None:  # what a test does with its database: a row in one table
            engine = make_engine(url)
            with engine.begin() as connection:
                connection.exec_driver_sql("INSERT INTO table_000 (name) VALUES ('a test')")
            engine.dispose()

        def copy() -> None:
            use(databases.copy_of(template))
            databases.drop_all()

        def own() -> None:
            url = databases.new()
            build_with_create_db(url)
            use(url)
            databases.drop_all()

        results["database_at_head: the session's build, once"] = [seconds(build)]
        if database == "mysql":  # the first copy replays the build; later ones are given back
            results["database_at_head: a replayed copy"] = [seconds(copy)]
        results["per test: database_at_head"] = []
        results["per test: a create_db() of its own"] = []
        for _ in range(calls):
            results["per test: database_at_head"].append(seconds(copy))
            results["per test: a create_db() of its own"].append(seconds(own))
        template.drop()
    finally:
        databases.drop_all()
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(results))


def time_in_process(project: Path, server: Server, calls: int) -> dict[str, list[float]]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", server.database, "--calls", str(calls)]
    env = python_env("")
    env.pop("DATABASE_URL")
    result = subprocess.run(
        [*command, "--server", server.url.render_as_string(hide_password=False)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise SystemExit(f"in-process worker failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- The report -------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):>7.3f}s {min(values):>7.3f}s {max(values):>7.3f}s"


def verdict(ratio: float) -> str:
    return f"target <= {TARGET_RATIO:g}x: {'met' if ratio <= TARGET_RATIO else 'NOT met'}"


def report(database: str, processes: list[Contender], in_process: dict[str, list[float]]) -> None:
    upgrade, create_db, naive, floor, without_models, frozen = processes
    runs = len(create_db.seconds)
    print(f"\n{database}: processes, each on a fresh empty database, median of {runs} runs taking turns")
    print(f"  {'':<48} {'median':>8} {'min':>8} {'max':>8}  x floor")
    for contender in processes:
        print(f"  {contender.label:<48} {spread(contender.seconds)}  {contender.median / floor.median:>6.2f}")
    for part, values in floor.parts.items():
        print(f"    floor: {part:<41} {spread(values)}")
    ratio = create_db.median / floor.median
    print(f"  create_db.py / floor (the models imported): {ratio:.2f}, {verdict(ratio)}")
    faster = create_db.median < naive.median
    print(
        f"  create_db.py / the seed's naive recipe: {create_db.median / naive.median:.2f}, "
        f"target faster: {'met' if faster else 'NOT met'}"
    )
    print(f"  create_db.py / the floor without the models: {create_db.median / without_models.median:.2f}")
    print(
        f"  create_db.py / the floor whose process also skips its exit's collection (gc.freeze() last, as "
        f"create_db.py does): {create_db.median / frozen.median:.2f} (for reference)"
    )

    calls = len(in_process["create_db()"])
    print(f"  in-process, each call on a fresh database (made outside the timing), median of {calls} taking turns:")
    for label in ("first create_db() in the process", "create_db()", "create_all", "create_all(checkfirst=False)"):
        shown = {"create_db()": "create_db(), each further call", "create_all": "bare metadata.create_all()"}
        print(f"  {shown.get(label, label):<48} {spread(in_process[label])}")
    ratio = statistics.median(in_process["create_db()"]) / statistics.median(in_process["create_all"])
    print(f"  further create_db() / bare create_all: {ratio:.2f}, {verdict(ratio)}")
    print("  per test (a row inserted into one table), each database made and dropped or given back:")
    for label in (
        "database_at_head: the session's build, once",
        "database_at_head: a replayed copy",
        "per test: database_at_head",
        "per test: a create_db() of its own",
    ):
        if label in in_process:
            shown = {"per test: database_at_head": "per test: database_at_head (a copy given back)"}
            shown = shown if "database_at_head: a replayed copy" in in_process else {}
            print(f"  {shown.get(label, label):<48} {spread(in_process[label])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "mysql", "all"], default="all")
    parser.add_argument("--revisions", type=int, default=300, help="length of the synthetic history (default 300)")
    parser.add_argument("--runs", type=int, default=5, help="process runs per contender (default 5)")
    parser.add_argument("--calls", type=int, default=5, help="in-process calls per contender (default 5)")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run every process with PYTHONDONTWRITEBYTECODE (default: Python's default, caching on, as users run it)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the baked projects and print where they are")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.server, args.calls)
        return 0

    databases = ["sqlite", "postgresql", "mysql"] if args.database == "all" else [args.database]
    where = Path(tempfile.mkdtemp(prefix="bench-create-db-"))
    load_before = " ".join(f"{load:.2f}" for load in os.getloadavg())
    if args.no_bytecode_cache:  # every process started from here on
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    caching = "off (--no-bytecode-cache)" if args.no_bytecode_cache else "on (Python's default, as users run it)"
    print(
        f"A fresh database at head: a synthetic history of {args.revisions} revisions (each: a table, a column "
        f"added to it, an index), matching models; bytecode caching {caching}; load average before: {load_before}"
    )
    try:
        for database in databases:
            project = bake(where / database, database)
            head = write_history_with_churn(project, args.revisions)
            server = Server(database, where)
            processes = time_processes(project, server, head, args.revisions, args.runs)
            in_process = time_in_process(project, server, args.calls)
            report(database, processes, in_process)
        if args.keep:
            print(f"baked projects kept in {where}")
    finally:
        if not args.keep:
            shutil.rmtree(where, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
