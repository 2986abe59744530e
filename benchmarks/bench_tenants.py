"""Benchmark: every tenant from one command (migrations/all_tenants.py), side by side.

Bakes a project per database with cookiecutter and replaces its example history with a
short synthetic one (``--revisions`` - 1 revisions each creating a table, adding a column
and indexing it, then one that adds a column and an index to the first table: "the new
revision"). On a fresh database of each server (``--database postgresql|mysql|all``):

1. ``--upgrade-tenants`` (200) tenants at the revision before head: the shell loop
   ``for t in ...; do alembic -x tenant=$t upgrade head; done`` against our one command
   ``python -m migrations.cli upgrade_tenants`` (``--jobs``, default: up to 4), taking turns,
   the tenants put back at the revision before head between runs (outside the timing).
   Target: ours >= 20x faster.
2. 1,000 and 2,000 tenants at head: ``upgrade_tenants`` finds nothing to do (every tenant's
   version read, none touched). Target: 2,000 in <= 10 s, and no worse than linear.
3. A new tenant at head on a ``--tables`` (100) table schema (a second bake, its history
   the churn one of bench_create_db.py): ``create_tenant()`` in-process against a bare
   ``CREATE SCHEMA`` (MariaDB: ``CREATE DATABASE``) plus ``create_all()`` into it, taking
   turns, after one untimed call of each. Target: <= 1.2x.

Medians of ``--runs`` runs. Servers: ``TEST_POSTGRESQL_URL`` and ``TEST_MYSQL_URL``, as the
template's tests. The 2,000 tenants are made once, by our command (its time is printed too).

    python benchmarks/bench_tenants.py --database postgresql --runs 3
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
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_create_db import SERVERS, bake, write_history_with_churn  # noqa: E402

ADD_COLUMN = """op.add_column("table_000", sa.Column("extra", sa.String(length=50), nullable=True))
    op.create_index(op.f("ix_table_000_extra"), "table_000", ["extra"], unique=False)"""
DROP_COLUMN = """op.drop_index(op.f("ix_table_000_extra"), table_name="table_000")
    op.drop_column("table_000", "extra")"""


def history(project: Path, revisions: int) -> tuple[str, str]:
    """``revisions`` - 1 churn revisions, then the new one (a column and an index): (before head, head)."""
    from alembic.util import format_as_comma, template_to_file

    before = write_history_with_churn(project, revisions - 1)
    head = hashlib.sha256(b"the new revision").hexdigest()[:12]
    template_to_file(
        project / "migrations" / "script.py.mako",
        project / "migrations" / "versions" / f"20240201_{head}_extra.py",
        "utf-8",
        up_revision=head,
        down_revision=before,
        branch_labels=None,
        depends_on=None,
        create_date=datetime(2024, 2, 1),
        comma=format_as_comma,
        message="table_000.extra and its index",
        imports="",
        upgrades=ADD_COLUMN,
        downgrades=DROP_COLUMN,
    )
    models = next(project.glob("*/models.py"))
    extra = "    extra: Mapped[str | None] = mapped_column(String(50), index=True)\n"
    table_000 = r'(__tablename__ = "table_000"\n(?:.*\n){3})'  # its name, a blank line, id, name
    models.write_text(re.sub(table_000, lambda found: found.group(1) + extra, models.read_text(), count=1))
    return before, head


def env_for(url) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("TEST_DATABASE_URL", "PYTHONPATH")}
    env["DATABASE_URL"] = url.render_as_string(hide_password=False)
    return env


def run(command: list[str], cwd: Path, env: dict[str, str], shell: bool = False) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        command if not shell else command[0],
        cwd=cwd,
        env=env,
        shell=shell,
        capture_output=True,
        text=True,
        timeout=7200,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{str(command)[:200]} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return elapsed


def engine_for(url):
    from sqlalchemy import create_engine, pool

    return create_engine(url, poolclass=pool.NullPool)


def make_tenants(url, names: list[str]) -> None:
    postgresql = url.get_backend_name() == "postgresql"
    with engine_for(url).begin() as connection:
        for name in names:
            connection.exec_driver_sql(f"CREATE {'SCHEMA' if postgresql else 'DATABASE'} {name}")


def put_back(url, names: list[str], before: str) -> None:
    """The tenants at the revision before head again (the new revision undone by hand)."""
    postgresql = url.get_backend_name() == "postgresql"
    with engine_for(url).begin() as connection:
        for name in names:
            if postgresql:
                connection.exec_driver_sql(f"DROP INDEX {name}.ix_table_000_extra")
            connection.exec_driver_sql(f"ALTER TABLE {name}.table_000 DROP COLUMN extra")
            connection.exec_driver_sql(f"UPDATE {name}.alembic_version SET version_num = '{before}'")


def at(url, names: list[str], head: str) -> None:
    from sqlalchemy import text

    with engine_for(url).connect() as connection:
        union = " UNION ALL ".join(f"SELECT '{n}', version_num FROM {n}.alembic_version" for n in names)
        found = dict(connection.execute(text(union)).all())
    wrong = [name for name in names if found.get(name) != head]
    if wrong:
        raise SystemExit(f"{len(wrong)} tenants not at {head}: {wrong[:5]}")


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    return f"median {median(values):.2f} s of {len(values)} ({min(values):.2f}..{max(values):.2f})"


def bench_upgrades(database: str, folder: Path, args) -> None:
    from sqlalchemy import make_url

    project = bake(folder / "upgrade", database)
    before, head = history(project, args.revisions)
    server = make_url(SERVERS[database])
    url = server.set(database=f"bench_tenants_{uuid.uuid4().hex[:8]}")
    admin = engine_for(server).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {url.database}")
    prefix = f"{url.database}_" if database != "postgresql" else "t"  # MariaDB: databases of the server
    everyone = [f"{prefix}{number:04d}" for number in range(args.at_head_tenants)]
    some = everyone[: args.upgrade_tenants]
    env = env_for(url)
    cli = [sys.executable, "-m", "migrations.cli", "upgrade_tenants"]
    try:
        make_tenants(url, everyone)
        made = run([*cli, "--tenants", f"schemas:{prefix}%", "--jobs", str(args.jobs)], project, env)
        at(url, everyone, head)
        print(f"{database}: {len(everyone)} new tenants upgraded from base to head by one command: {made:.1f} s")

        listed = ",".join(some)
        loop = f"for t in {' '.join(some)}; do {sys.executable} -m alembic -q -x tenant=$t upgrade head || exit 1; done"
        ours_times, loop_times = [], []
        for _ in range(args.runs):
            put_back(url, some, before)
            ours_times.append(run([*cli, "--tenants", listed, "--jobs", str(args.jobs)], project, env))
            at(url, some, head)
            put_back(url, some, before)
            loop_times.append(run([loop], project, env, shell=True))
            at(url, some, head)
        ratio = median(loop_times) / median(ours_times)
        print(f"{database}: {len(some)} tenants, one new revision (a column and an index):")
        print(f"  shell loop of alembic -x tenant=T upgrade head: {spread(loop_times)}")
        print(f"  python -m migrations.cli upgrade_tenants --jobs {args.jobs}: {spread(ours_times)}")
        print(f"  ours {ratio:.1f}x faster (target >= 20x: {'met' if ratio >= 20 else 'NOT met'})")

        half = everyone[: len(everyone) // 2]
        times: dict[int, list[float]] = {len(half): [], len(everyone): []}
        for _ in range(args.runs):
            times[len(half)].append(run([*cli, "--tenants", ",".join(half)], project, env))
            times[len(everyone)].append(run([*cli, "--tenants", f"schemas:{prefix}%"], project, env))
        small, large = median(times[len(half)]), median(times[len(everyone)])
        print(f"{database}: tenants already at head, one command checks them all:")
        for count, values in times.items():
            print(f"  {count} tenants: {spread(values)}")
        growth = large / small
        print(
            f"  {len(everyone)} in {large:.2f} s (target <= 10 s: {'met' if large <= 10 else 'NOT met'}); "
            f"{len(everyone)} / {len(half)} tenants: {growth:.2f}x the time (linear: 2x)"
        )
    finally:
        with admin.connect() as connection:
            if database == "postgresql":
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {url.database} WITH (FORCE)")
            else:
                for name in everyone:
                    connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {url.database}")


def worker(server_url: str, runs: int) -> None:
    """In the 100-table project's folder: create_tenant() beside a bare CREATE SCHEMA + create_all."""
    sys.path.insert(0, os.getcwd())
    from alembic.config import Config
    from sqlalchemy import make_url

    from migrations.new_tenant import create_tenant
    from migrations.settings import make_engine, target_metadata

    url = make_url(server_url)
    postgresql = url.get_backend_name() == "postgresql"
    config = Config("alembic.ini")
    config.attributes["configure_logger"] = False
    metadata = target_metadata(config)
    names: list[str] = []

    def name() -> str:
        names.append(f"{url.database}_{len(names):04d}" if not postgresql else f"n{len(names):04d}")
        return names[-1]

    def ours() -> None:
        create_tenant(config, name(), url)

    def bare() -> None:
        engine = make_engine(url)
        new = name()
        with engine.begin() as connection:
            connection.exec_driver_sql(f"CREATE {'SCHEMA' if postgresql else 'DATABASE'} {new}")
            connection.exec_driver_sql(f"SET search_path TO {new}" if postgresql else f"USE {new}")
            metadata.create_all(connection, checkfirst=False)
        engine.dispose()

    results: dict[str, list[float]] = {"create_tenant()": [], "CREATE SCHEMA + create_all()": []}
    try:
        ours(), bare()  # the first calls import and read the history
        for _ in range(runs):
            for label, function in (("create_tenant()", ours), ("CREATE SCHEMA + create_all()", bare)):
                start = time.perf_counter()
                function()
                results[label].append(time.perf_counter() - start)
    finally:
        if not postgresql:
            engine = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:
                for made in names:
                    connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {made}")
    print(json.dumps(results))


def bench_new_tenant(database: str, folder: Path, args) -> None:
    from sqlalchemy import make_url

    project = bake(folder / "new", database)
    write_history_with_churn(project, args.tables)
    server = make_url(SERVERS[database])
    url = server.set(database=f"bench_new_tenant_{uuid.uuid4().hex[:8]}")
    admin = engine_for(server).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {url.database}")
    try:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", url.render_as_string(hide_password=False)]
        result = subprocess.run(
            [*command, "--runs", str(args.runs)], cwd=project, env=env_for(url), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(result.stdout + result.stderr)
        results = json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        with admin.connect() as connection:
            force = " WITH (FORCE)" if database == "postgresql" else ""
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {url.database}{force}")
    ours, bare = results["create_tenant()"], results["CREATE SCHEMA + create_all()"]
    ratio = median(ours) / median(bare)
    print(f"{database}: a new tenant at head, {args.tables} tables:")
    print(f"  create_tenant(): {spread(ours)}")
    print(f"  bare CREATE {'SCHEMA' if database == 'postgresql' else 'DATABASE'} + create_all(): {spread(bare)}")
    print(f"  {ratio:.2f}x (target <= 1.2x: {'met' if ratio <= 1.2 else 'NOT met'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "mysql", "all"], default="all")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--revisions", type=int, default=5)
    parser.add_argument("--upgrade-tenants", type=int, default=200)
    parser.add_argument("--at-head-tenants", type=int, default=2000)
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--part", choices=["upgrades", "new", "all"], default="all")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.runs)
        return 0
    databases = ["postgresql", "mysql"] if args.database == "all" else [args.database]
    for database in databases:
        folder = Path(tempfile.mkdtemp(prefix="bench-tenants-"))
        try:
            if args.part in ("upgrades", "all"):
                bench_upgrades(database, folder, args)
            if args.part in ("new", "all"):
                bench_new_tenant(database, folder, args)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
