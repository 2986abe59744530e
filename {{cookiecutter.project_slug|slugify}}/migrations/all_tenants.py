"""Every tenant from one command, and new tenants at head (beyond the living cookbook's
"one tenant per ``alembic`` run": migrations/tenants.py)::

    python -m migrations.cli upgrade_tenants                  # every tenant to head
    python -m migrations.cli upgrade_tenants --jobs 4 --tenants 'schemas:tenant_%'
    python -m migrations.cli upgrade_tenants --sql            # one script for all (--sql-dir DIR: one each)
    python -m migrations.cli create_tenant acme               # a new tenant, built at head (migrations/new_tenant.py)

Which tenants: ``--tenants`` (migrations/tenant_directory.py: a name pattern, a query, a
function of yours or a list). Where each stands is read first, in a few queries per server:
a tenant already at head is not touched, so running it again finishes only what is left. The others are upgraded
each through env.py, as ``alembic -x tenant=NAME upgrade head`` would, ``--jobs`` at a time
(processes), at most ``--per-server`` at a time on one server. One tenant's failure neither
stops nor rolls back another's. At the end: how many were upgraded, already at head,
failed (each failure: the tenant, the revision it stays at, the one-line error); the exit
status is 1 if any failed.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import sys
import time
from argparse import Namespace
from collections import Counter, defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, make_url
from sqlalchemy.exc import DBAPIError

from migrations.environments import version_table
from migrations.failures import cannot_connect, describe, revision_that_raised
from migrations.new_tenant import create_tenant
from migrations.settings import make_engine, run_on_connection
from migrations.tenant_directory import Tenant, list_tenants, stands, tenant_spec


@dataclass
class Outcome:
    tenant: str
    status: str  # "upgraded", "at head", "failed", "written"
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    error: str = ""


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def of(self, status: str) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status == status]

    @property
    def failed(self) -> list[Outcome]:
        return self.of("failed")

    def summary(self) -> str:
        counts = Counter(outcome.status for outcome in self.outcomes)
        total = len(self.outcomes)
        order = ("upgraded", "created", "written", "at head", "failed")
        parts = [f"{counts[status]} {status}" for status in order if counts[status]]
        lines = [f"{total} tenant{'s' if total != 1 else ''} in {self.seconds:.1f} s: {', '.join(parts) or 'none'}."]
        moves = defaultdict(list)
        for outcome in self.of("upgraded"):
            moves[(versions(outcome.before), versions(outcome.after))].append(outcome.tenant)
        for (before, after), names in sorted(moves.items()):
            lines.append(f"upgraded {before} -> {after}: {shortened(names)}")
        for outcome in self.failed:
            stays = "" if outcome.error.startswith("no such") else f" (stays at {versions(outcome.before)})"
            lines.append(f"failed {outcome.tenant}{stays}: {outcome.error}")
        return "\n".join(lines)


def versions(found: tuple[str, ...]) -> str:
    return ",".join(found) if found else "base"


def shortened(names: list[str], shown: int = 10) -> str:
    names = sorted(names)
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def upgrade_tenants(
    config: Config,
    revision: str = "heads",
    tenants: str | None = None,
    jobs: int | None = None,
    per_server: int | None = None,
    sql: bool = False,
    sql_dir: str | None = None,
    progress: bool | None = None,
    create: bool = False,
) -> Report:
    """Upgrade every tenant ``tenants`` names (see the module's docstring) to ``revision``;
    ``create``: build those that do not exist yet at head (``create_tenant``), instead of
    reporting each as a failure."""
    started = time.monotonic()
    spec = tenant_spec(config, tenants)
    jobs = max(1, jobs if jobs is not None else min(4, os.cpu_count() or 1))
    per_server = max(1, per_server if per_server is not None else jobs)
    script = ScriptDirectory.from_config(config)
    heads = tuple(sorted(script.get_heads()))
    if not heads:
        raise CommandError(f"{script.versions} holds no revision: no head to upgrade to")
    to_head = revision in ("head", "heads")
    everyone = list_tenants(config, spec)
    table = version_table(config)
    where: dict[str, tuple[str, ...] | None] = {}
    for url, group in grouped(everyone).items():
        names = [tenant.name for tenant in group]
        where.update(run_on_connection(make_url(url), lambda c, n=names: stands(c, n, table), cannot_connect))
    report = Report()
    pending = []
    for tenant in everyone:
        found = where[tenant.name]
        if found is None and create and not sql and to_head:
            pending.append((tenant, None))
        elif found is None:
            kind = "schema" if tenant.url.startswith("postgresql") else "database"
            command_line = f"python -m migrations.cli create_tenant {tenant.name}"
            error = f"no such {kind} on {tenant.where()} (a new tenant? --create, or {command_line})"
            report.outcomes.append(Outcome(tenant.name, "failed", error=error))
        elif to_head and found == heads:
            report.outcomes.append(Outcome(tenant.name, "at head", found, found))
        else:
            pending.append((tenant, found))
    job = Job(
        config.config_file_name,
        config.toml_file_name,
        config.config_ini_section,
        tuple(getattr(config.cmd_opts, "x", None) or ()),
        revision,
        sql,
        table,
    )
    if sql:
        report.outcomes.extend(write_sql(job, pending, config, sql_dir))
    else:
        show = sys.stderr.isatty() if progress is None else progress
        bar = Progress(len(everyone), len(report.outcomes), len(report.failed)) if show else None
        report.outcomes.extend(run_all(job, pending, jobs, per_server, bar))
    report.outcomes.sort(key=lambda outcome: outcome.tenant)
    report.seconds = time.monotonic() - started
    return report


def grouped(tenants: list[Tenant]) -> dict[str, list[Tenant]]:
    by_url: dict[str, list[Tenant]] = defaultdict(list)
    for tenant in tenants:
        by_url[tenant.url].append(tenant)
    return by_url


@dataclass(frozen=True)
class Job:
    """What a worker needs to run env.py for a tenant (picklable: workers are processes)."""

    config_file: str | None
    toml_file: str | None
    section: str
    x: tuple[str, ...]
    revision: str
    sql: bool
    version_table: str


def tenant_config(job: Job, tenant: str | None, **attributes) -> Config:
    config = Config(
        job.config_file,
        toml_file=job.toml_file,
        ini_section=job.section,
        cmd_opts=Namespace(x=list(job.x)),
        attributes={"tenant": tenant, "configure_logger": False, **attributes},
    )
    return config


_connections: dict[str, Connection] = {}  # a worker's, one per server, kept between tenants


def migrate(job: Job, tenant: Tenant, before: tuple[str, ...] | None) -> Outcome:
    """One tenant, through env.py, on this process's connection to its server; ``before``
    None: a tenant to create at head."""
    if before is None:
        try:
            create_tenant(tenant_config(job, None), tenant.name, tenant.url)
        except Exception as error:  # reported, never raised
            message = str(error) if isinstance(error, CommandError) else describe(error)
            return Outcome(tenant.name, "failed", error=message.splitlines()[0])
        return Outcome(tenant.name, "created")
    connection = _connections.get(tenant.url)
    if connection is None or connection.closed or connection.invalidated:
        try:
            connection = _connections[tenant.url] = make_engine(tenant.url).connect()
        except DBAPIError as error:
            message = f"cannot connect to {tenant.where()}: {describe(error)}"
            return Outcome(tenant.name, "failed", before, error=message)
    config = tenant_config(job, tenant.name, connection=connection)
    try:
        command.upgrade(config, job.revision)
    except Exception as error:  # one tenant's failure is reported, never raised
        message = str(error) if isinstance(error, CommandError) else describe(error)
        found = revision_that_raised(error)
        if found and found[0] not in message:
            message = f"revision {found[0]}: {message}"
        now = stands_now(connection, tenant.name, job.version_table, before)
        return Outcome(tenant.name, "failed", now, error=message.splitlines()[0])
    after = stands_now(connection, tenant.name, job.version_table, before)
    return Outcome(tenant.name, "upgraded" if after != before else "at head", before, after)


def stands_now(connection: Connection, name: str, table: str, before: tuple[str, ...]) -> tuple[str, ...]:
    try:
        if connection.in_transaction():
            connection.rollback()
        found = stands(connection, [name], table)[name]
    except DBAPIError:
        return before
    return found or ()


def run_all(job: Job, pending: list, jobs: int, per_server: int, bar: Progress | None) -> list[Outcome]:
    outcomes: list[Outcome] = []
    try:
        if jobs == 1 or len(pending) <= 1:
            try:
                for tenant, before in pending:
                    outcomes.append(migrate(job, tenant, before))
                    bar and bar.step(outcomes[-1])
            finally:
                close_connections()
        else:
            run_in_workers(job, pending, jobs, per_server, outcomes, bar)
    finally:
        bar and bar.end()
    return outcomes


class Worker:
    """A process that migrates the tenants it is sent, one at a time, on its own connections."""

    def __init__(self, job: Job) -> None:
        self.pipe, theirs = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=work, args=(job, theirs), daemon=True)
        self.process.start()
        theirs.close()
        self.task: tuple[Tenant, tuple[str, ...] | None] | None = None

    def send(self, task: tuple[Tenant, tuple[str, ...] | None]) -> None:
        self.task = task
        self.pipe.send(task)

    def stop(self) -> None:
        with suppress(OSError):
            self.pipe.send(None)
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()


def work(job: Job, pipe) -> None:
    """A worker's loop (in its own process)."""
    try:
        while (task := pipe.recv()) is not None:
            pipe.send(migrate(job, *task))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        close_connections()


def run_in_workers(job: Job, pending: list, jobs: int, per_server: int, outcomes: list, bar) -> None:
    """``jobs`` worker processes, at most ``per_server`` tenants at once on one server. A
    worker that dies (killed, out of memory) fails its own tenant only: the others go on, and
    a new worker takes its place."""
    queue: dict[str, list] = defaultdict(list)
    for tenant, before in pending:
        queue[tenant.url].append((tenant, before))
    busy: Counter = Counter()
    workers = [Worker(job) for _ in range(min(jobs, len(pending)))]
    try:
        while queue or any(worker.task for worker in workers):
            for index, worker in enumerate(workers):  # every idle worker takes a tenant whose server has room
                if worker.task is None and not worker.process.is_alive():  # died idle
                    worker = workers[index] = Worker(job)
                if worker.task is None:
                    url = next((url for url in queue if busy[url] < per_server), None)
                    if url is not None:
                        worker.send(queue[url].pop(0))
                        busy[url] += 1
                        if not queue[url]:
                            del queue[url]
            working = [worker for worker in workers if worker.task]
            multiprocessing.connection.wait([w.pipe for w in working] + [w.process.sentinel for w in working])
            for index, worker in enumerate(workers):
                if worker.task is None or not (worker.pipe.poll() or not worker.process.is_alive()):
                    continue
                tenant, before = worker.task
                try:
                    outcome = worker.pipe.recv()
                except (EOFError, OSError):  # it died under this tenant
                    code = worker.process.exitcode
                    error = f"its worker process died (exit code {code}) while migrating it"
                    outcome = Outcome(tenant.name, "failed", before or (), error=error)
                    workers[index] = Worker(job)
                else:
                    worker.task = None
                busy[tenant.url] -= 1
                outcomes.append(outcome)
                bar and bar.step(outcome)
    finally:
        for worker in workers:
            worker.stop()


def close_connections() -> None:
    while _connections:
        _url, connection = _connections.popitem()
        connection.close()


class Progress:
    """One line on the terminal (stderr), rewritten as tenants finish."""

    def __init__(self, total: int, done: int, failed: int) -> None:
        self.total, self.done, self.failed = total, done, failed
        self.draw()  # those read to be at head, or missing, are done already

    def step(self, outcome: Outcome) -> None:
        self.done += 1
        self.failed += outcome.status == "failed"
        self.draw()

    def draw(self) -> None:
        filled = round(30 * self.done / max(self.total, 1))
        failed = f", {self.failed} failed" if self.failed else ""
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} tenants{failed}")
        sys.stderr.flush()

    def end(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def write_sql(job: Job, pending: list, config: Config, sql_dir: str | None) -> list[Outcome]:
    """--sql: each tenant's upgrade from where it stands, as SQL: one script on stdout, or one
    file per tenant in ``sql_dir``."""
    folder = Path(sql_dir) if sql_dir else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for tenant, before in pending:
        if len(before) > 1:  # --sql starts from one revision
            error = f"--sql: at {versions(before)}, several heads; upgrade it online"
            outcomes.append(Outcome(tenant.name, "failed", before, error=error))
            continue
        target = f"{before[0]}:{job.revision}" if before else job.revision
        buffer = open(folder / f"{tenant.name}.sql", "w") if folder is not None else sys.stdout  # noqa: SIM115
        try:
            tenant_conf = tenant_config(job, tenant.name, database_url=tenant.url)
            tenant_conf.output_buffer = buffer
            if folder is None:
                buffer.write(f"-- tenant {tenant.name}\n")
            command.upgrade(tenant_conf, target, sql=True)
        except CommandError as error:
            outcomes.append(Outcome(tenant.name, "failed", before, error=str(error).splitlines()[0]))
            continue
        finally:
            if folder is not None:
                buffer.close()
        outcomes.append(Outcome(tenant.name, "written", before))
    return outcomes
