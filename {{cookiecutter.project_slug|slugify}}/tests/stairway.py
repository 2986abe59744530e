"""Fast, in-process migration steps: the machinery behind tests/test_migrations.py (and the
template's benchmarks/bench_migration_suite.py).

Why it exists: every ``alembic.command.upgrade(config, ...)`` builds a new ScriptDirectory,
which imports every revision file again before it runs env.py, so stepping through a
history of N revisions that way imports N files N times over. Here the ScriptDirectory is
loaded once, and each step does what ``command.upgrade``/``downgrade`` do (an
EnvironmentContext around env.py) with that same object. Every step still runs env.py
(``script.run_env()``) on one shared Connection (recipe 3), so it gets what a real
``alembic upgrade`` gets: batch mode and the ``legacy_alter_table`` pragma on SQLite, the
data flag, the migration lock, one transaction per run (per migration on MariaDB).

- ``Migrator``: upgrade, downgrade and check on one Connection with one ScriptDirectory;
  it also captures the schema and counts rows between steps, leaving no transaction open
  behind it, so each step begins and commits its own as in production.
- ``stairway()``: base to head, one revision at a time: capture the schema and count the
  rows, upgrade the revision, downgrade it, capture and count again (the caller asserts
  both are equal), upgrade it again. With the data steps on, it starts at the first
  revision that has any (``has_data_steps``): before it, the run is the same as without.

Comparing schemas is tests/schema.py's ``snapshot()``, which reflects every table: done
twice per revision, that alone grows with the square of the history's length. On SQLite
the whole schema is the rows of ``sqlite_master``, so when those rows are the same before
and after (the usual case) the snapshots are equal and none is taken; when they differ
(a batch rebuild reformats a CREATE TABLE, or a downgrade left something behind) both
states are reflected by ``snapshot()``: the live database, and an in-memory copy of the
database as it was before the upgrade (SQLite's backup API, well under a millisecond).
Other databases are reflected by ``snapshot()`` before and after each step.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from types import CodeType, FunctionType
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationStep
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, inspect, pool, text

from tests.schema import VERSION_TABLE, snapshot

COUNTS_PER_QUERY = 400  # scalar subqueries in one SELECT: below every database's column limit


def load_script(config: Config) -> ScriptDirectory:
    """The ScriptDirectory of ``config``, with every revision file imported now, once."""
    script = ScriptDirectory.from_config(config)
    script.revision_map.heads  # noqa: B018  building the revision map imports the revision files
    return script


def revisions_base_to_head(script: ScriptDirectory) -> list[Script]:
    """Every revision, parents before children."""
    return list(reversed(list(script.walk_revisions("base", "heads"))))


@dataclass
class Captured:
    """The schema at one moment: on SQLite its ``sqlite_master`` rows and, if asked, a copy of
    the database to reflect later; elsewhere the snapshot itself."""

    catalog: tuple | None = None
    copy: Engine | None = None
    snapshot: dict[str, Any] | None = None
    tables: list[str] = field(default_factory=list)  # as snapshot() lists them


class Migrator:
    """Alembic's commands on one Connection, with one ScriptDirectory loaded once.

    The connection reaches env.py through ``config.attributes["connection"]``; leave it
    outside a transaction (as ``engine.connect()`` gives it) so that env.py begins and
    commits each run itself, as ``alembic upgrade`` does. ``data`` sets
    ``config.attributes["data"]``: the revisions' data steps run too (-x data=true).
    On SQLite, ``capture()`` keeps in-memory copies of the database, two in turn: only the
    last two captures that kept one can be compared against.
    """

    def __init__(
        self, config: Config, connection: Connection, script: ScriptDirectory | None = None, data: bool = False
    ) -> None:
        config.attributes["connection"] = connection
        config.attributes["data"] = data
        config.attributes["configure_logger"] = False  # leave pytest's logging alone
        self.config = config
        self.connection = connection
        self.data = data
        self.script = script if script is not None else load_script(config)
        # pysqlite (the default SQLite driver) has the backup API that capture() uses.
        self.sqlite = connection.dialect.name == "sqlite" and hasattr(connection.connection.driver_connection, "backup")
        self._copies: list[Engine] = []  # two in-memory databases, used in turn
        self._copy_holds: dict[int, Captured] = {}  # which capture each copy holds
        self._env_code: CodeType | None = None

    def _run_env(self) -> None:
        """``ScriptDirectory.run_env()``, which executes env.py as a new module each time;
        here env.py is compiled once (Alembic recompiles it when bytecode is not written)."""
        path = Path(self.script.env_py_location)
        if not path.is_file():  # env.pyc alone: let Alembic load it
            self.script.run_env()
            return
        if self._env_code is None:
            self._env_code = compile(path.read_text(), str(path), "exec")
        module = importlib.util.module_from_spec(importlib.util.spec_from_file_location("env_py", path))
        exec(self._env_code, module.__dict__)

    def _run(self, steps, destination: str) -> None:
        """What ``alembic.command.upgrade``/``downgrade`` do, with our ScriptDirectory."""
        with EnvironmentContext(self.config, self.script, fn=steps, destination_rev=destination):
            self._run_env()

    def upgrade(self, revision: str) -> None:
        self._run(lambda heads, _context: self.script._upgrade_revs(revision, heads), revision)

    def downgrade(self, revision: str) -> None:
        self._run(lambda heads, _context: self.script._downgrade_revs(revision, heads), revision)

    def undo(self, revision: Script) -> None:
        """Downgrade exactly this revision, leaving any other branch alone: ``alembic downgrade
        <revision>@-1``. A merge point, which no downgrade target can name (Alembic calls the
        walk ambiguous), goes back to all of its parents by a step of its own, in an env.py run."""
        if not revision.is_merge_point:
            self.downgrade(f"{revision.revision}@-1")
            return
        step = MigrationStep.downgrade_from_script(self.script.revision_map, revision)
        with EnvironmentContext(self.config, self.script, fn=lambda _heads, _context: [step]):
            self._run_env()

    def check(self) -> None:
        """``alembic check``: AutogenerateDiffsDetected when the models and the database differ."""
        command.check(self.config)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """Read between steps without leaving SQLAlchemy's autobegun transaction open:
        env.py would take it for the caller's, and the next steps would never commit."""
        external = self.connection.in_transaction()
        try:
            yield self.connection
        finally:
            if not external and self.connection.in_transaction():
                self.connection.rollback()

    def current(self) -> tuple[str, ...]:
        """The revisions in the version table."""
        with self._reading() as connection:
            if not inspect(connection).has_table(VERSION_TABLE):
                return ()
            return tuple(sorted(connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()))

    def snapshot(self) -> dict[str, Any]:
        """tests/schema.py's snapshot of the database now."""
        with self._reading() as connection:
            return snapshot(connection)

    def capture(self, keep_copy: bool = True) -> Captured:
        """The schema now, cheaply: see the module's docstring."""
        if not self.sqlite:
            now = self.snapshot()
            return Captured(snapshot=now, tables=list(now["tables"]))
        with self._reading() as connection:
            rows = connection.execute(
                text("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name, tbl_name")
            ).all()
        tables = [name for kind, name, *_ in rows if kind == "table" and not name.startswith("sqlite_")]
        captured = Captured(catalog=tuple(tuple(row) for row in rows), tables=sorted(set(tables) - {VERSION_TABLE}))
        if keep_copy:
            if not self._copies:
                self._copies = [create_engine("sqlite://", poolclass=pool.StaticPool) for _ in range(2)]
            target = self._copies[0]
            self._copies.reverse()  # the next capture uses the other copy
            with target.connect() as copy:
                self.connection.connection.driver_connection.backup(copy.connection.driver_connection)
            captured.copy = target
            self._copy_holds[id(target)] = captured
        return captured

    def compare(self, before: Captured, now: Captured) -> tuple[Any, Any]:
        """Two equal values when the schema now is the one captured before, else two that differ:
        the same ``sqlite_master`` rows twice, or tests/schema.py's snapshots of both."""
        if before.catalog is not None and before.catalog == now.catalog:
            return before.catalog, now.catalog
        if before.snapshot is None:
            if self._copy_holds.get(id(before.copy)) is not before:
                raise RuntimeError("compare() needs one of the last two captures that kept a copy")
            with before.copy.connect() as copy:
                before.snapshot = snapshot(copy)
        return before.snapshot, now.snapshot if now.snapshot is not None else self.snapshot()

    def row_counts(self, tables: list[str]) -> dict[str, int]:
        """The number of rows in each of these tables (a few hundred tables per query)."""
        counts: dict[str, int] = {}
        with self._reading() as connection:
            quote = connection.dialect.identifier_preparer.quote
            for start in range(0, len(tables), COUNTS_PER_QUERY):
                chunk = tables[start : start + COUNTS_PER_QUERY]
                columns = ", ".join(f"(SELECT count(*) FROM {quote(table)})" for table in chunk)
                counts.update(zip(chunk, connection.execute(text(f"SELECT {columns}")).one(), strict=True))
        return counts

    def close(self) -> None:
        """Let go of the in-memory copy; the connection stays the caller's."""
        for copy in self._copies:
            copy.dispose()

    def __enter__(self) -> Migrator:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass
class Step:
    """One revision of the stairway. ``before`` and ``after_downgrade`` are equal when the
    downgrade restored the schema: tests/schema.py snapshots, or on SQLite, when nothing
    in ``sqlite_master`` changed, those rows (which the snapshots are made from). The row
    counts are every table's. ``skipped`` says why a revision was only upgraded."""

    revision: Script
    downgrade_target: str
    before: Any = None
    after_downgrade: Any = None
    rows_before: dict[str, int] = field(default_factory=dict)
    rows_after_downgrade: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None

    def __str__(self) -> str:
        return f"{self.revision.revision} ({self.revision.doc})"


def stairway(migrator: Migrator) -> Iterator[Step]:
    """Base to head, one revision at a time: yields each Step after its upgrade and downgrade,
    for the caller to compare; the database ends at head.

    With the data steps on (``migrator.data``), the stairway starts at the first revision
    that has data steps (see ``has_data_steps``): the revisions before it run exactly as
    they do with the data steps off, which the stairway without them checks, so they are
    only upgraded (at once when they form a line) and yielded as skipped. From there on,
    every revision goes down and up again, on a database that may now hold their rows.
    """
    revisions = revisions_base_to_head(migrator.script)
    start = next((i for i, revision in enumerate(revisions) if has_data_steps(revision)), len(revisions))
    if not migrator.data:
        start = 0
    elif start:
        line = all(revision.down_revision == before.revision for before, revision in pairwise(revisions[:start]))
        for revision in [revisions[start - 1]] if line else revisions[:start]:
            migrator.upgrade(revision.revision)
        reason = "no data steps here or before: the same run as without data steps"
        yield from (Step(revision, undo_target(revision), skipped=reason) for revision in revisions[:start])
    steps = revisions[start:]
    linear = all(revision.down_revision == parent.revision for parent, revision in pairwise(steps))
    if not linear:  # branches: each revision down and up again on its own (three runs of env.py)
        for revision in steps:
            before = migrator.capture()
            step = Step(revision, undo_target(revision), rows_before=migrator.row_counts(before.tables))
            migrator.upgrade(revision.revision)
            yield finish(migrator, step, before)
            migrator.upgrade(revision.revision)
        return
    # A line: upgrading revision i from where the downgrade of i-1 left the database applies
    # i-1 and i in one run of env.py; the schema at i-1 was captured on the way up before.
    before = migrator.capture()
    rows = migrator.row_counts(before.tables)
    for revision in steps:
        step = Step(revision, undo_target(revision), rows_before=rows)
        migrator.upgrade(revision.revision)
        at_revision = migrator.capture()
        rows = migrator.row_counts(at_revision.tables)
        yield finish(migrator, step, before)
        before = at_revision
    if steps:
        migrator.upgrade(steps[-1].revision)


def finish(migrator: Migrator, step: Step, before: Captured) -> Step:
    """Downgrade the step's revision and record the schema and rows it left."""
    migrator.undo(step.revision)
    after = migrator.capture(keep_copy=False)
    step.before, step.after_downgrade = migrator.compare(before, after)
    step.rows_after_downgrade = migrator.row_counts(after.tables)
    return step


def _does_nothing() -> None:
    """A body that is only a docstring (or ``pass``) compiles to this function's code."""


def has_data_steps(revision: Script) -> bool:
    """Whether ``-x data=true`` changes what this revision runs. False only for a revision of
    script.py.mako's shape whose ``data_upgrades()`` and ``data_downgrades()`` do nothing and
    whose other functions, ``upgrade()`` and ``downgrade()`` aside, never ask for the flag."""
    functions = {name: value for name, value in vars(revision.module).items() if isinstance(value, FunctionType)}
    for name in ("data_upgrades", "data_downgrades"):
        code = functions[name].__code__ if name in functions else None
        if code is None or code.co_code != _does_nothing.__code__.co_code or code.co_names:
            return True
    asking = {name for name, function in functions.items() if "data_enabled" in function.__code__.co_names}
    return not asking <= {"upgrade", "downgrade"}


def undo_target(revision: Script) -> str:
    """Where ``Migrator.undo()`` takes the database, in words for a failure message."""
    if revision.is_merge_point:
        return f"its parents {', '.join(revision.down_revision)}"
    return f"{revision.revision}@-1"


def differences(before: Any, after: Any) -> list[str]:
    """What changed between two snapshots, one line per table part or object, for a failure message."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return ["sqlite_master changed"] if before != after else []
    lines = []
    for table in sorted(set(before["tables"]) | set(after["tables"])):
        old, new = before["tables"].get(table), after["tables"].get(table)
        if old is None:
            lines.append(f"table {table}: left behind")
        elif new is None:
            lines.append(f"table {table}: missing")
        else:
            changed = [part for part in old if old[part] != new.get(part)]
            lines.extend(f"table {table} {part}: {old[part]!r} -> {new.get(part)!r}" for part in changed)
    for key in sorted((set(before) | set(after)) - {"tables"}):
        if before.get(key) != after.get(key):
            lines.append(f"{key}: {before.get(key)!r} -> {after.get(key)!r}")
    return lines
