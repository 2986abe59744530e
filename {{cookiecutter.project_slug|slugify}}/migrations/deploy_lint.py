"""Safe deploys: what each revision will do to a live database, said before production sees it.

A correct revision can still stop an application: ``op.create_index`` on a big PostgreSQL
table blocks every write while the index builds; ``op.alter_column(type_=...)`` rewrites the
table under a lock that blocks reads too; a dropped or renamed column breaks the version of
the application that is still serving while the new one rolls out. This lint reads each
revision's operations (and the SQL of ``op.execute`` where it can be read) and names, one line
each, what would hurt on a live database, and the safe way to write it::

    python -m migrations.cli lint                  # the revisions not yet applied to the database
    python -m migrations.cli lint base:head        # a range; --dialect postgresql|mariadb|sqlite
    python -m migrations.cli lint --format json    # for tools

How: each revision's ``upgrade()`` runs in Alembic's offline mode (as ``alembic upgrade --sql``
does, nothing connects; data steps on) with every operation it invokes recorded, with its line.
A revision that cannot run offline (it reads rows through ``op.get_bind()``) is linted up to
that point, and the line says so.

What each rule says a statement does to a live table (its lock, whether it blocks reads or
writes, whether it rewrites the table, whether its time grows with the table's rows, whether
it fails on a table with rows) was measured on PostgreSQL and MariaDB, with a second
connection reading and writing while it ran: the template's tests measure it again on every
run (the template's ``tests/proofs/test_deploy_rules_measured.py``) and fail where a rule says otherwise. On SQLite a
migration holds the database's write lock for its whole run, whatever it does: only the rules
about the running version and about failing on rows are reported there.

Acknowledge a finding where it is, with a reason, on the operation's line or in the comment
lines just above its statement (above a ``with`` or a ``def``, it covers what they hold)::

    # deploy-ok: add-index -- customer has 40 rows and takes no writes at deploy time
    op.create_index("ix_customer_email", "customer", ["email"])

The migration suite (tests/test_migrations.py) fails on findings not acknowledged in the
revisions after ``deploy_lint_baseline`` (alembic.ini or [tool.alembic]; unset: every one), so
that an old history is not a wall of red: set it to the last revision already deployed.
"""

from __future__ import annotations

import ast
import io
import json
import re
import sys
import tokenize
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.operations import Operations, ops
from alembic.runtime.environment import EnvironmentContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError

from migrations.failures import error_codes
from migrations.heads import shown as _shown
from migrations.lock import ddl_timeout
from migrations.replaceable import FUNCTION, PROCEDURE, ReplaceOp, ReversibleOp

DIALECTS = ("postgresql", "mariadb", "sqlite")


@dataclass(frozen=True)
class Effect:
    """What a statement does to a live table while it runs (and, on PostgreSQL, until the
    migration's transaction commits: a lock is held to the end of the transaction)."""

    lock: str  # PostgreSQL: the lock mode on the table; MariaDB: the ALTER's algorithm
    blocks_reads: bool
    blocks_writes: bool
    rewrites: bool = False  # the whole table is copied
    grows: bool = False  # its time grows with the table's rows (a rewrite, a scan, an index build)

    def describe(self) -> str:
        blocked = [name for name, yes in (("reads", self.blocks_reads), ("writes", self.blocks_writes)) if yes]
        what = f"blocks {' and '.join(blocked)}" if blocked else "blocks neither reads nor writes"
        if blocked and not self.blocks_reads:
            what += " (not reads)"
        if self.rewrites:
            how_long = "while it rewrites the table (time grows with its rows)"
        elif self.grows:
            how_long = "for a time that grows with the table's rows"
        else:
            how_long = "briefly, but queued behind every running query on the table, and everything queues behind it"
        if not blocked:
            how_long = "(its time grows with the table's rows)" if self.grows else ""
        article = "an" if self.lock[0] in "AEIOU" else "a"
        taken = f"runs as {self.lock}" if self.lock.startswith("ALGORITHM") else f"takes {article} {self.lock} lock"
        return f"{taken}: {what} {how_long}".rstrip()


@dataclass(frozen=True)
class Rule:
    code: str
    title: str
    effects: Mapping[str, Effect] = field(default_factory=dict)  # where the live effect is the harm
    fails_with_rows: frozenset[str] = frozenset()  # dialects where the statement fails on a table with rows
    fails: Mapping[str, str] = field(default_factory=dict)  # dialects where it always fails, and why
    waits: frozenset[str] = frozenset()  # dialects where it waits, with no limit, behind running queries
    breaks: str | None = None  # how the version still serving breaks (every dialect)
    safe: Mapping[str, str] = field(default_factory=dict)  # per dialect, "*" for the rest
    asked_only: bool = False  # found only by asking the server (lint(..., ask=URL))
    only: frozenset[str] | None = None  # the dialects it can happen on (None: every one)

    def applies_to(self, dialect: str) -> bool:
        if self.only is not None and dialect not in self.only:
            return False
        return (
            dialect in self.effects
            or dialect in self.fails_with_rows
            or dialect in self.fails
            or dialect in self.waits
            or self.breaks is not None
        )

    def message(self, dialect: str, effect: Effect | None = None) -> str:
        parts = []
        if effect is not None:  # what the server answered
            parts.append(f"{effect.describe()} (MariaDB's answer, asked on an empty copy)")
        elif dialect in self.effects:
            parts.append(self.effects[dialect].describe())
        if dialect in self.fails:
            parts.append(f"fails: {self.fails[dialect]}")
        if dialect in self.waits:
            parts.append(
                "waits without limit for any query running on the table to end, and every query on the table"
                " waits behind it meanwhile"
            )
        if dialect in self.fails_with_rows:
            parts.append("fails on a table that has rows")
        if self.breaks:
            parts.append(f"breaks the running version: {self.breaks}")
        safe = self.safe.get(dialect, self.safe.get("*"))
        return "; ".join(parts) + (f". Safe: {safe}" if safe else "")


CONCURRENTLY = "postgresql_concurrently=True inside `with op.get_context().autocommit_block():`"
EXPAND_CONTRACT = "expand/contract in two releases"
NOT_VALID = (
    "postgresql_not_valid=True, then `op.execute('ALTER TABLE <table> VALIDATE CONSTRAINT <name>')` in a later"
    " revision (SHARE UPDATE EXCLUSIVE: blocks neither reads nor writes)"
)

RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule(
            "add-index",
            "CREATE INDEX on an existing table, not CONCURRENTLY",
            effects={"postgresql": Effect("SHARE", blocks_reads=False, blocks_writes=True, grows=True)},
            safe={"postgresql": CONCURRENTLY},
        ),
        Rule(
            "lock-timeout",
            "DDL on an existing table, run with no lock timeout (ddl_lock_timeout = 0)",
            waits=frozenset({"postgresql", "mariadb"}),
            safe={
                "*": "keep ddl_lock_timeout (default 10 s): env.py then sets lock_timeout (PostgreSQL) or"
                " lock_wait_timeout (MariaDB) for the run, and a revision that waits longer fails and can be"
                " run again"
            },
        ),
        Rule(
            "concurrently-in-transaction",
            "CREATE or DROP INDEX CONCURRENTLY inside the migration's transaction",
            fails={"postgresql": "PostgreSQL refuses CONCURRENTLY inside a transaction block"},
            safe={"postgresql": "put it inside `with op.get_context().autocommit_block():`"},
        ),
        Rule(
            "drop-index",
            "DROP INDEX, not CONCURRENTLY",
            effects={"postgresql": Effect("ACCESS EXCLUSIVE", blocks_reads=True, blocks_writes=True)},
            safe={"postgresql": CONCURRENTLY},
        ),
        Rule(
            "add-unique-constraint",
            "ADD CONSTRAINT ... UNIQUE on an existing table",
            effects={"postgresql": Effect("ACCESS EXCLUSIVE", blocks_reads=True, blocks_writes=True, grows=True)},
            safe={
                "postgresql": "CREATE UNIQUE INDEX CONCURRENTLY (op.create_index(..., unique=True, "
                + CONCURRENTLY
                + ")), then `op.execute('ALTER TABLE <table> ADD CONSTRAINT <name> UNIQUE USING INDEX <index>')`"
            },
        ),
        Rule(
            "add-primary-key",
            "ADD PRIMARY KEY on an existing table",
            effects={"postgresql": Effect("ACCESS EXCLUSIVE", blocks_reads=True, blocks_writes=True, grows=True)},
            safe={
                "postgresql": "CREATE UNIQUE INDEX CONCURRENTLY (op.create_index(..., unique=True, "
                + CONCURRENTLY
                + ")), then `op.execute('ALTER TABLE <table> ADD CONSTRAINT <name> PRIMARY KEY USING INDEX <index>')`"
            },
        ),
        Rule(
            "add-foreign-key",
            "ADD FOREIGN KEY on an existing table, validated at once",
            effects={
                "postgresql": Effect("SHARE ROW EXCLUSIVE", blocks_reads=False, blocks_writes=True, grows=True),
                "mariadb": Effect("ALGORITHM=COPY", blocks_reads=False, blocks_writes=True, rewrites=True, grows=True),
            },
            safe={
                "postgresql": NOT_VALID,
                "mariadb": "no online way keeps the check: run it when the table takes no writes, or with"
                " foreign_key_checks=0 (ALGORITHM=INPLACE, LOCK=NONE; existing rows are then not checked)",
            },
        ),
        Rule(
            "add-check-constraint",
            "ADD CONSTRAINT ... CHECK on an existing table, validated at once",
            effects={
                "postgresql": Effect("ACCESS EXCLUSIVE", blocks_reads=True, blocks_writes=True, grows=True),
                "mariadb": Effect("ALGORITHM=COPY", blocks_reads=False, blocks_writes=True, rewrites=True, grows=True),
            },
            safe={
                "postgresql": NOT_VALID,
                "mariadb": "run it when the table takes no writes (MariaDB has no online way to add a CHECK)",
            },
        ),
        Rule(
            "backfill-under-lock",
            "rows of a table changed in bulk in the transaction that altered the table",
            effects={"postgresql": Effect("ACCESS EXCLUSIVE", blocks_reads=True, blocks_writes=True, grows=True)},
            safe={
                "postgresql": "fill it inside `with op.get_context().autocommit_block():` (what came before commits"
                " first, and each statement commits), in batches, or in an `alembic upgrade` run of its own"
            },
        ),
        Rule(
            "add-column-not-null",
            "ADD COLUMN ... NOT NULL without a server default",
            fails_with_rows=frozenset({"postgresql", "sqlite"}),
            breaks="its INSERTs do not name the new column, and fail",
            safe={
                "*": "add it with a server_default, or nullable; fill it in a data step; make it NOT NULL in a"
                " later revision (" + EXPAND_CONTRACT + ")"
            },
        ),
        Rule(
            "add-column-volatile-default",
            "ADD COLUMN with a volatile server default (random(), gen_random_uuid(), clock_timestamp(), ...)",
            effects={
                "postgresql": Effect(
                    "ACCESS EXCLUSIVE", blocks_reads=True, blocks_writes=True, rewrites=True, grows=True
                )
            },
            safe={
                "postgresql": "add the column without the default, then `op.alter_column(..., server_default=...)`"
                " (new rows only) and fill the old rows in batches in a data step"
            },
        ),
        Rule(
            "add-generated-column",
            "ADD COLUMN ... GENERATED ALWAYS AS (...) STORED",
            effects={
                "postgresql": Effect(
                    "ACCESS EXCLUSIVE", blocks_reads=True, blocks_writes=True, rewrites=True, grows=True
                )
            },
            safe={
                "postgresql": "add a plain nullable column, fill it in batches in a data step, and keep it filled"
                " from the application or a trigger"
            },
        ),
        Rule(
            "change-type",
            "ALTER COLUMN ... TYPE",
            effects={
                "postgresql": Effect(
                    "ACCESS EXCLUSIVE", blocks_reads=True, blocks_writes=True, rewrites=True, grows=True
                ),
                "mariadb": Effect("ALGORITHM=COPY", blocks_reads=False, blocks_writes=True, rewrites=True, grows=True),
            },
            safe={
                "*": "add a column of the new type, write both, fill it in batches in a data step, switch the"
                " reads, drop the old one (" + EXPAND_CONTRACT + "); on PostgreSQL, widening a VARCHAR or"
                " making it TEXT rewrites nothing and is not reported"
            },
        ),
        Rule(
            "blocking-alter",
            "an ALTER that MariaDB, asked on an empty copy of the table, cannot run with LOCK=NONE",
            effects={"mariadb": Effect("ALGORITHM=COPY", blocks_reads=False, blocks_writes=True, rewrites=True)},
            safe={
                "mariadb": "run it when the table takes no writes, or reach the same schema in steps MariaDB runs"
                " INSTANT or INPLACE with LOCK=NONE (add a column rather than change one; " + EXPAND_CONTRACT + ")"
            },
            asked_only=True,
        ),
        Rule(
            "narrow-type",
            "a column's type made narrower (shorter string, smaller number)",
            breaks="it may still write values the new type cannot hold",
            only=frozenset({"postgresql", "mariadb"}),  # SQLite enforces no length or size
            safe={"*": "narrow it only after every running version writes values that fit"},
        ),
        Rule(
            "set-not-null",
            "ALTER COLUMN ... SET NOT NULL on an existing table",
            effects={"postgresql": Effect("ACCESS EXCLUSIVE", blocks_reads=True, blocks_writes=True, grows=True)},
            safe={
                "postgresql": "op.create_check_constraint(name, table, '<column> IS NOT NULL',"
                " postgresql_not_valid=True); `VALIDATE CONSTRAINT` in a later revision; then SET NOT NULL"
                " (PostgreSQL sees the valid CHECK and scans nothing: not reported) and drop the CHECK",
            },
        ),
        Rule(
            "writes-null",
            "a column made NOT NULL",
            breaks="it may still write NULL there",
            safe={"*": "make it NOT NULL one release after every running version writes a value"},
        ),
        Rule(
            "drop-default",
            "a column's server default dropped",
            breaks="its INSERTs that leave the column to its default now write NULL there, or fail (NOT NULL)",
            safe={"*": "drop the default one release after every running version writes the column itself"},
        ),
        Rule(
            "change-signature",
            "a function or procedure replaced by one of other arguments",
            breaks="it still calls the old one, with its arguments",
            only=frozenset({"postgresql", "mariadb"}),  # SQLite has no functions
            safe={
                "*": "create the new one beside the old (another name or overload); drop the old one a release later"
            },
        ),
        Rule(
            "drop-object",
            "a view, function, procedure or trigger dropped",
            breaks="it may still use it",
            safe={"*": "stop using it in a release first; drop it in a later one"},
        ),
        Rule(
            "drop-column",
            "DROP COLUMN",
            breaks="it still selects the column (the ORM selects every mapped column)",
            safe={"*": "remove the column from the models and deploy that first; drop it in a later release"},
        ),
        Rule(
            "rename-column",
            "a column renamed",
            breaks="it still uses the old name",
            safe={
                "*": "add the new column, write both, fill it, switch the reads, drop the old one ("
                + EXPAND_CONTRACT
                + ")"
            },
        ),
        Rule(
            "drop-table",
            "DROP TABLE",
            breaks="it still uses the table",
            safe={"*": "stop using the table in a release first; drop it in a later one"},
        ),
        Rule(
            "rename-table",
            "a table renamed",
            breaks="it still uses the old name",
            safe={"*": "create the new table beside the old, or a view of the old name, for one release"},
        ),
    )
}

ACKNOWLEDGED = re.compile(r"#\s*deploy-ok:\s*(?P<codes>[\w-]+(?:\s*,\s*[\w-]+)*)\s*(?:--\s*(?P<reason>.*\S))?")
VOLATILE = re.compile(
    r"\b(random|gen_random_uuid|uuid_generate_v[14]|uuid_generate_v1mc|clock_timestamp|timeofday|nextval)\s*\(",
    re.I,
)


@dataclass
class Finding:
    path: str
    line: int
    revision: str
    rule: str
    dialect: str
    operation: str
    message: str
    acknowledged: str | None = None  # the reason given

    def text(self) -> str:
        return f"{self.path}:{self.line}: {self.revision} {self.rule} [{self.dialect}] {self.operation}: {self.message}"


@dataclass
class Report:
    dialect: str
    revisions: list[str]
    findings: list[Finding]
    notes: list[str]  # revisions read only in part (what could not run offline)
    problems: list[str]  # deploy-ok comments that name no rule or give no reason

    @property
    def open(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.acknowledged is None]

    def text(self) -> str:
        lines = [finding.text() for finding in self.open] + self.problems + self.notes
        acknowledged = len(self.findings) - len(self.open)
        lines.append(
            f"{len(self.open)} finding{'s' if len(self.open) != 1 else ''} in {len(self.revisions)}"
            f" revision{'s' if len(self.revisions) != 1 else ''} for {self.dialect}"
            + (f" ({acknowledged} acknowledged)" if acknowledged else "")
        )
        return "\n".join(lines)

    def json(self) -> str:
        return json.dumps(
            {
                "dialect": self.dialect,
                "revisions": self.revisions,
                "findings": [asdict(finding) for finding in self.findings],
                "notes": self.notes,
                "problems": self.problems,
            },
            indent=2,
        )


# -- which dialect, which revisions ------------------------------------------------------------


def dialect_of(url: sa.URL | str) -> str:
    """The rules' dialect for a database URL: MySQL URLs get MariaDB's (the one measured)."""
    backend = sa.make_url(url).get_backend_name()
    if backend in ("mysql", "mariadb"):
        return "mariadb"
    if backend not in DIALECTS:
        raise CommandError(f"the deploy lint knows {', '.join(DIALECTS)}, not {backend}")
    return backend


def revisions_in(script: ScriptDirectory, spec: str) -> list[Script]:
    """The revisions of ``spec`` (``a:b``, ``a:`` or ``:b``; ``a`` excluded), oldest first."""
    lower, _, upper = spec.partition(":") if ":" in spec else ("base", ":", spec)
    lower, upper = lower or "base", upper or "heads"
    try:
        revisions = list(script.iterate_revisions(upper, lower))
    except CommandError as error:
        raise CommandError(f"lint {spec}: {error}") from None
    return list(reversed(revisions))


def after(script: ScriptDirectory, standing: Sequence[str]) -> list[Script]:
    """The revisions a database standing at ``standing`` (and the baseline) has not applied,
    oldest first."""
    applied: set[str] = set()
    for revision in standing:
        applied |= {ancestor.revision for ancestor in script.iterate_revisions(revision, "base")}
    return [revision for revision in reversed(list(script.walk_revisions())) if revision.revision not in applied]


def to_lint(config: Config, script: ScriptDirectory, standing: Sequence[str] = ()) -> list[Script]:
    """The revisions after ``deploy_lint_baseline`` that a database at ``standing`` has not applied."""
    start = baseline(config)
    if start is not None:
        try:
            script.get_revision(start)
        except CommandError:
            raise CommandError(f"deploy_lint_baseline = {start}: no such revision in this history") from None
    return after(script, [*standing, *([start] if start else [])])


def baseline(config: Config) -> str | None:
    return (config.get_alembic_option("deploy_lint_baseline") or "").strip() or None


# -- reading a revision's operations ---------------------------------------------------------


@dataclass
class Recorded:
    operation: ops.MigrateOperation
    line: int
    batch_table: str | None = None
    sql: str = ""  # what Alembic rendered for it, offline
    in_autocommit_block: bool = False  # inside op.get_context().autocommit_block()
    asked: Effect | None = None  # how MariaDB said it would run it (None: not asked)


class _Output(io.StringIO):
    """Alembic's offline output: SQL written outside any operation (``op.get_bind().execute()``,
    which offline renders its statement) is written down as an ``op.execute`` of it."""

    recording: _Recording | None = None

    def write(self, text: str) -> int:
        recording = self.recording
        if recording is not None and not recording.inside:
            statement = text.strip().rstrip(";").strip()
            if statement and statement.upper() not in ("BEGIN", "COMMIT"):
                line = recording._line()
                if line:  # the revision's own code, not Alembic's bookkeeping
                    recorded = Recorded(ops.ExecuteSQLOp(statement), line, in_autocommit_block=recording.autocommit > 0)
                    recorded.sql = text
                    recording.recorded.append(recorded)
        return super().write(text)


class _Recording:
    """An Operations whose ``invoke`` (and each batch's) first writes down the operation and the
    revision's line it came from, then lets Alembic render it as SQL (offline: nothing runs).
    ``render=False``: Alembic's own operations are written down only (the rules read the
    operations; only asking MariaDB needs their SQL), ``op.create_table()`` giving its Table;
    other operations (op.create_view & co., a project's own) still run, as what they invoke
    is written down too."""

    def __init__(self, migration_context, path: str, output: _Output, render: bool = True) -> None:
        self.path = path
        self.output = output
        self.render = render
        output.recording = self
        self.inside = 0  # within an operation
        self.recorded: list[Recorded] = []
        self.operations = Operations(migration_context)
        run = self.operations.invoke
        self.operations.invoke = lambda operation: self._invoke(run, operation)
        batch_alter_table = self.operations.batch_alter_table
        self.operations.batch_alter_table = lambda table, *a, **kw: self._batch(batch_alter_table, table, *a, **kw)
        self.autocommit = 0
        # the class's own: the context may be the last revision's, whose recording set its own
        block = type(migration_context).autocommit_block.__get__(migration_context)

        @contextmanager
        def autocommit_block() -> Iterator[None]:
            self.autocommit += 1
            try:
                with block():
                    yield
            finally:
                self.autocommit -= 1

        migration_context.autocommit_block = autocommit_block

    def _line(self) -> int:
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename == self.path:
                return frame.f_lineno
            frame = frame.f_back
        return 0

    def _invoke(self, run, operation, batch_table: str | None = None):
        recorded = Recorded(operation, self._line(), batch_table, in_autocommit_block=self.autocommit > 0)
        self.recorded.append(recorded)
        if not self.render and type(operation).__module__ == ops.__name__:  # one of Alembic's own
            if isinstance(operation, ops.CreateTableOp):  # what op.create_table() returns
                return operation.to_table(self.operations.migration_context)
            return None
        start = self.output.tell()
        self.inside += 1
        try:
            return run(operation)
        except (
            NotImplementedError,
            AttributeError,
            TypeError,
            ValueError,
            KeyError,
            CommandError,
            sa.exc.SQLAlchemyError,
        ):
            return None  # it could not be rendered offline; what matters is written down
        finally:
            self.inside -= 1
            recorded.sql = self.output.getvalue()[start:]

    @contextmanager
    def _batch(self, batch_alter_table, table_name: str, *args: Any, **kw: Any) -> Iterator[Any]:
        manager = batch_alter_table(table_name, *args, **kw)
        batch = manager.__enter__()
        run = batch.invoke
        batch.invoke = lambda operation: self._invoke(run, operation, table_name)
        try:
            yield batch
        except BaseException:
            if not manager.__exit__(*sys.exc_info()):
                raise
        else:
            self.inside += 1  # the batch's operations, written down already, are rendered now
            try:
                manager.__exit__(None, None, None)
            except Exception:  # offline, a batch that must copy the table cannot reflect it
                pass
            finally:
                self.inside -= 1


def operations_of(
    config: Config, script: ScriptDirectory, revision: Script, dialect: str
) -> tuple[list[Recorded], str]:
    """The operations ``revision.upgrade()`` invokes for ``dialect``, data steps on, and why it
    stopped early ("" when it ran to its end)."""
    with reading(config, script, dialect) as read:
        return read(revision)


@contextmanager
def reading(config: Config, script: ScriptDirectory, dialect: str, render: bool = True) -> Iterator[Any]:
    """``read(revision)``, which does what ``operations_of()`` does, for revision after
    revision in one offline MigrationContext (configured once: 0.1 ms a revision), each as a
    new run (the SQL rendered for the last one, and the enum types its tables made, forgotten).
    ``render=False``: Alembic's operations are not rendered as SQL (see ``_Recording``)."""
    sa_dialect = "mysql" if dialect == "mariadb" else dialect
    attributes = config.attributes
    had_data = attributes.get("data", None)
    attributes["data"] = True
    try:
        with EnvironmentContext(config, script) as environment:
            output = _Output()
            environment.configure(dialect_name=sa_dialect, as_sql=True, output_buffer=output)
            context = environment.get_context()

            def read(revision: Script) -> tuple[list[Recorded], str]:
                output.seek(0)
                output.truncate()
                memo = getattr(context.impl, "memo", None)
                if isinstance(memo, dict):  # the enum types create_table() made (see stairway.as_a_new_run)
                    memo.clear()
                recording = _Recording(context, revision.module.__file__, output, render)
                recording.operations._install_proxy()  # as Operations.context() does: op.* is it now
                stopped = ""
                try:
                    revision.module.upgrade()
                except Exception as error:
                    said = str(error).splitlines()[0] if str(error) else ""
                    stopped = f"{type(error).__name__}: {said}".strip(": ")
                finally:
                    recording.operations._remove_proxy()
                return recording.recorded, stopped

            yield read
    finally:
        if had_data is None:
            attributes.pop("data", None)
        else:
            attributes["data"] = had_data


# -- the rules --------------------------------------------------------------------------------


def _column_names(columns) -> str:
    """Column names, and an expression (a functional index) as SQL."""
    return ", ".join(getattr(column, "name", None) or str(column) for column in columns or ())


IS_NOT_NULL = re.compile(r'^\(*\s*["`]?(?P<column>\w+)["`]?\s+IS\s+NOT\s+NULL\s*\)*$', re.I)


@dataclass
class _State:
    """What the revisions linted so far did: tables new in this revision, existing tables it
    altered in the transaction still open (a bulk UPDATE then holds their lock); CHECKs proving
    a column NOT NULL (PostgreSQL then sets NOT NULL without a scan, once the CHECK is valid)."""

    new_tables: set[str] = field(default_factory=set)
    locked: set[str] = field(default_factory=set)  # existing tables altered in the transaction still open
    checks: dict[str, tuple[str, str, bool]] = field(default_factory=dict)  # name: (table, column, valid)

    def check(self, name: str | None, table: str, condition: str, valid: bool) -> None:
        match = IS_NOT_NULL.match(condition.strip())
        if match and name:
            self.checks[str(name)] = (table, match["column"], valid)

    def validate(self, name: str) -> None:
        if name in self.checks:
            table, column, _ = self.checks[name]
            self.checks[name] = (table, column, True)

    @property
    def proven_not_null(self) -> set[tuple[str, str]]:
        return {(table, column) for table, column, valid in self.checks.values() if valid}


def _matches(
    operation, batch_table: str | None, dialect: str, state: _State, in_autocommit_block: bool = False
) -> Iterator[tuple[str, str]]:
    """(rule, operation as said) for each rule the operation falls under."""
    new_tables = state.new_tables
    table = batch_table or getattr(operation, "table_name", None)
    if isinstance(operation, ops.CreateTableOp):
        new_tables.add(operation.table_name)
        return
    if isinstance(operation, ops.ExecuteSQLOp):
        yield from _sql_matches(operation.sqltext, dialect, state, in_autocommit_block)
        return
    if isinstance(operation, (ReplaceOp, ReversibleOp)):  # the replaceable objects (recipe 4)
        yield from _object_matches(operation, dialect)
        return
    if table in new_tables:
        return  # made in this revision: empty, and no running version uses it
    if isinstance(operation, TABLE_OPERATIONS) and not in_autocommit_block and table:
        state.locked.add(table)
    if isinstance(operation, (ops.CreateIndexOp, ops.DropIndexOp)) and operation.kw.get("postgresql_concurrently"):
        if not in_autocommit_block:
            verb = "create_index" if isinstance(operation, ops.CreateIndexOp) else "drop_index"
            yield "concurrently-in-transaction", f"{verb} {operation.index_name} on {table}, concurrently"
    elif isinstance(operation, ops.CreateIndexOp):
        yield "add-index", f"create_index {operation.index_name} on {table} ({_column_names(operation.columns)})"
    elif isinstance(operation, ops.DropIndexOp):
        yield "drop-index", f"drop_index {operation.index_name}" + (f" on {table}" if table else "")
    elif isinstance(operation, ops.CreatePrimaryKeyOp):
        yield "add-primary-key", f"create_primary_key {operation.constraint_name} on {table}"
    elif isinstance(operation, ops.CreateUniqueConstraintOp):
        yield "add-unique-constraint", f"create_unique_constraint {operation.constraint_name} on {table}"
    elif isinstance(operation, ops.CreateForeignKeyOp):
        source = batch_table or operation.source_table
        if source not in new_tables and not operation.kw.get("postgresql_not_valid"):
            yield "add-foreign-key", f"create_foreign_key {operation.constraint_name} on {source}"
    elif isinstance(operation, ops.CreateCheckConstraintOp):
        state.check(
            operation.constraint_name, table, str(operation.condition), not operation.kw.get("postgresql_not_valid")
        )
        if not operation.kw.get("postgresql_not_valid"):
            yield "add-check-constraint", f"create_check_constraint {operation.constraint_name} on {table}"
    elif isinstance(operation, ops.AddColumnOp):
        column = operation.column
        said = f"add_column {table}.{column.name}"
        default = column.server_default
        generated = column.computed is not None or column.identity is not None or column.autoincrement is True
        if not column.nullable and default is None and not generated:
            yield "add-column-not-null", said
        if default is not None and VOLATILE.search(_default_text(default)):
            yield "add-column-volatile-default", said
        if column.computed is not None and column.computed.persisted is not False:
            yield "add-generated-column", said
        if column.unique:
            yield "add-unique-constraint", f"{said}, unique"
        if column.foreign_keys:
            yield "add-foreign-key", f"{said}, with a foreign key"
        if any(isinstance(constraint, sa.CheckConstraint) for constraint in column.constraints):
            yield "add-check-constraint", f"{said}, with a CHECK"
    elif isinstance(operation, ops.AlterColumnOp):
        said = f"alter_column {table}.{operation.column_name}"
        if operation.modify_name:
            yield "rename-column", f"{said} to {operation.modify_name}"
        if operation.modify_type is not None:  # a type given as a class (sa.Text) is an instance of it
            old = _for_dialect(operation.existing_type, dialect) if operation.existing_type is not None else None
            new = _for_dialect(operation.modify_type, dialect)
            if not (dialect == "postgresql" and _widens_text(old, new)):
                yield "change-type", f"{said} type {new!r}" + (f" (was {old!r})" if old is not None else "")
            if old is not None and _narrows(old, new):
                yield "narrow-type", f"{said} {old!r} to {new!r}"
        # server_default=None drops it; existing_server_default: None (there was none), False (not said)
        if operation.modify_server_default is None and operation.existing_server_default is not None:
            yield "drop-default", f"{said} server_default=None"
        if operation.modify_nullable is False and operation.existing_nullable is not False:
            yield "writes-null", f"{said} nullable=False"
            if (table, operation.column_name) not in state.proven_not_null:
                yield "set-not-null", f"{said} nullable=False"
    elif isinstance(operation, ops.DropColumnOp):
        yield "drop-column", f"drop_column {table}.{operation.column_name}"
    elif isinstance(operation, ops.DropTableOp):
        yield "drop-table", f"drop_table {table}"
    elif isinstance(operation, ops.RenameTableOp):
        yield "rename-table", f"rename_table {table} to {operation.new_table_name}"


def _object_matches(operation: ReplaceOp | ReversibleOp, dialect: str) -> Iterator[tuple[str, str]]:
    kind = operation.kind
    if dialect not in kind.dialects:
        return
    if isinstance(operation, ReversibleOp):
        if not operation.creates:
            yield "drop-object", f"drop_{kind.label.replace(' ', '_')} {operation.target.name}"
    elif kind in (FUNCTION, PROCEDURE) and _signature(operation.old.name) != _signature(operation.new.name):
        yield "change-signature", f"replace_{kind.label} {operation.old.name} by {operation.new.name}"


def _signature(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower()).replace("( ", "(").replace(" )", ")")


def _default_text(default) -> str:
    value = getattr(default, "arg", default)
    return str(getattr(value, "text", value))


def _for_dialect(type_, dialect: str):
    """The type as the dialect gets it: a class as its instance, and a type with a variant for
    the dialect (``sa.JSON().with_variant(postgresql.JSONB(), "postgresql")``) as that variant,
    which SQLAlchemy keeps in ``_variant_mapping`` (as Alembic's autogenerate reads it)."""
    type_ = sa.types.to_instance(type_)
    variants = getattr(type_, "_variant_mapping", None) or {}
    for name in ("mariadb", "mysql") if dialect == "mariadb" else (dialect,):
        if name in variants:
            return sa.types.to_instance(variants[name])
    return type_


def _length(type_) -> int | None:
    return getattr(type_, "length", None)


def _widens_text(old, new) -> bool:
    """PostgreSQL changes these without a rewrite: a longer VARCHAR, or VARCHAR to TEXT."""
    if not isinstance(old, sa.String) or not isinstance(new, sa.String):
        return False
    if isinstance(new, sa.Text) or _length(new) is None:
        return not isinstance(old, sa.Enum)
    return _length(old) is not None and _length(new) >= _length(old) and not isinstance(new, sa.Enum)


INTEGER_SIZES = ((sa.SmallInteger, 2), (sa.BigInteger, 8), (sa.Integer, 4))


def _size(type_) -> int | None:
    for kind, size in INTEGER_SIZES:
        if isinstance(type_, kind):
            return size
    return None


def _narrows(old, new) -> bool:
    if isinstance(old, sa.String) and isinstance(new, sa.String):
        before, after_ = _length(old), _length(new)
        return after_ is not None and (before is None or after_ < before)
    if _size(old) and _size(new):
        return _size(new) < _size(old)
    if isinstance(old, sa.Numeric) and isinstance(new, sa.Numeric):
        return any(
            getattr(new, attr) is not None
            and getattr(old, attr) is not None
            and getattr(new, attr) < getattr(old, attr)
            for attr in ("precision", "scale")
        )
    return False


NAME = r'(?:"[^"]+"|`[^`]+`|[\w.]+)'
BULK_CHANGE = re.compile(
    rf"^(?:UPDATE\s+(?:ONLY\s+)?|DELETE\s+FROM\s+(?:ONLY\s+)?|INSERT\s+INTO\s+)(?P<table>{NAME})(?!.*\bVALUES\b)",
    re.I | re.S,
)
CONCURRENT = re.compile(r"^(?:CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+INDEX|REINDEX\s+\w+)\s+CONCURRENTLY\b", re.I)
ALTER = rf"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(?P<table>{NAME})"
NOT_A_COLUMN = r"(?!CONSTRAINT\b|INDEX\b|KEY\b|UNIQUE\b|PRIMARY\b|FOREIGN\b|CHECK\b|DEFAULT\b|NOT\b)"
SQL_RULES = tuple(
    (code, re.compile(pattern, re.I | re.S))
    for code, pattern in (
        (
            "add-index",
            rf"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)(?:IF\s+NOT\s+EXISTS\s+)?{NAME}\s+ON\s+"
            rf"(?:ONLY\s+)?(?P<table>{NAME})",
        ),
        ("drop-index", rf"^DROP\s+INDEX\s+(?!CONCURRENTLY)(?:IF\s+EXISTS\s+)?{NAME}"),
        ("add-foreign-key", rf"{ALTER}.*\bADD\b.*\bFOREIGN\s+KEY\b(?!.*\bNOT\s+VALID\b)"),
        ("add-check-constraint", rf"{ALTER}.*\bADD\s+(?:CONSTRAINT\s+{NAME}\s+)?CHECK\b(?!.*\bNOT\s+VALID\b)"),
        ("add-unique-constraint", rf"{ALTER}.*\bADD\s+(?:CONSTRAINT\s+{NAME}\s+)?UNIQUE\b(?!.*\bUSING\s+INDEX\b)"),
        ("change-type", rf"{ALTER}.*\bALTER\s+(?:COLUMN\s+)?{NAME}\s+(?:SET\s+DATA\s+)?TYPE\b"),
        ("set-not-null", rf"{ALTER}.*\bALTER\s+(?:COLUMN\s+)?(?P<column>{NAME})\s+SET\s+NOT\s+NULL\b"),
        ("writes-null", rf"{ALTER}.*\bALTER\s+(?:COLUMN\s+)?(?P<column>{NAME})\s+SET\s+NOT\s+NULL\b"),
        (
            "add-column-not-null",
            rf"{ALTER}.*\bADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?{NOT_A_COLUMN}{NAME}\s+"
            r"(?P<spec>[^,]*)",
        ),
        ("drop-column", rf"{ALTER}.*\bDROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?{NOT_A_COLUMN}{NAME}"),
        ("rename-column", rf"{ALTER}.*\bRENAME\s+(?:COLUMN\s+)?(?!TO\b){NAME}\s+TO\b"),
        ("rename-table", rf"{ALTER}\s+RENAME\s+TO\b|^RENAME\s+TABLE\s+(?P<table2>{NAME})"),
        ("drop-table", rf"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<table>{NAME})"),
    )
)


def _statements(sql: str) -> Iterator[str]:
    """The statements of a SQL text, split at semicolons outside quotes and dollar quotes."""
    current, quote, i = [], None, 0
    while i < len(sql):
        char = sql[i]
        if quote:
            if sql.startswith(quote, i):
                current.append(quote)
                i += len(quote)
                quote = None
                continue
        elif char in "'\"`":
            quote = char
        elif char == "$":
            match = re.match(r"\$\w*\$", sql[i:])
            if match:
                quote = match.group()
                current.append(quote)
                i += len(quote)
                continue
        elif char == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
            continue
        elif char == ";":
            yield "".join(current).strip()
            current = []
            i += 1
            continue
        current.append(char)
        i += 1
    if "".join(current).strip():
        yield "".join(current).strip()


def _bare(name: str | None) -> str | None:
    return name.strip('"`').split(".")[-1].strip('"`') if name else name


def _sql_matches(sqltext, dialect: str, state: _State, in_autocommit_block: bool = False) -> Iterator[tuple[str, str]]:
    new_tables = state.new_tables
    text = str(getattr(sqltext, "text", sqltext))
    for statement in _statements(text):
        validated = re.search(rf"\bVALIDATE\s+CONSTRAINT\s+(?P<name>{NAME})", statement, re.I)
        if validated:
            state.validate(_bare(validated["name"]))
        added = re.search(
            rf"\bADD\s+CONSTRAINT\s+(?P<name>{NAME})\s+CHECK\s*(?P<condition>\(.*\))", statement, re.I | re.S
        )
        altered = re.match(ALTER, statement, re.I)
        if added and altered:
            valid = "NOT VALID" not in statement.upper()
            state.check(_bare(added["name"]), _bare(altered["table"]), added["condition"], valid)
        created = re.match(
            rf"^CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<table>{NAME})", statement, re.I
        )
        if created:
            new_tables.add(_bare(created["table"]))
            continue
        said = _shown_sql(statement)
        changed = BULK_CHANGE.match(statement)
        if changed and not in_autocommit_block and _bare(changed["table"]) in state.locked:
            yield "backfill-under-lock", said
            continue
        if CONCURRENT.match(statement) and not in_autocommit_block:
            yield "concurrently-in-transaction", said
            continue
        for code, pattern in SQL_RULES:
            match = pattern.search(statement)
            if match and code == "add-column-not-null":
                spec = match["spec"].upper()
                if "NOT NULL" not in spec or "DEFAULT" in spec or "GENERATED" in spec:
                    continue
            if match:
                table = _bare(match.groupdict().get("table") or match.groupdict().get("table2"))
                if table and table in new_tables:
                    continue
                column = _bare(match.groupdict().get("column"))
                if code == "set-not-null" and (table, column) in state.proven_not_null:
                    continue
                yield code, said


# -- acknowledgements -------------------------------------------------------------------------


class _Acknowledgements:
    """The ``# deploy-ok: <rule>[, <rule>] -- <reason>`` comments of one revision file."""

    def __init__(self, path: Path) -> None:
        source = path.read_text(encoding="utf-8")
        self.source = source
        self.comments: dict[int, re.Match[str]] = {}
        self.problems: list[str] = []
        if "deploy-ok" not in source:  # most files: no tokens to read (a third of the suite's lint)
            return
        tokens = tokenize.generate_tokens(io.StringIO(source).readline)
        for token in tokens:
            if token.type == tokenize.COMMENT:
                match = ACKNOWLEDGED.search(token.string)
                if match:
                    self.comments[token.start[0]] = match
                    unknown = [code for code in self._codes(match) if code not in RULES]
                    if unknown:
                        self.problems.append(f"{path}:{token.start[0]}: deploy-ok names no rule: {', '.join(unknown)}")
                    if not match["reason"]:
                        self.problems.append(f"{path}:{token.start[0]}: deploy-ok without a reason (add `-- why`)")

    @cached_property
    def lines(self) -> list[str]:
        return self.source.splitlines()

    @cached_property
    def statements(self) -> list[ast.stmt]:
        return [node for node in ast.walk(ast.parse(self.source)) if isinstance(node, ast.stmt)]

    @staticmethod
    def _codes(match: re.Match[str]) -> list[str]:
        return [code.strip() for code in match["codes"].split(",")]

    def reason(self, line: int, rule: str) -> str | None:
        """The reason given for ``rule`` at ``line``, or None."""
        if not self.comments:
            return None
        holding = [node for node in self.statements if node.lineno <= line <= (node.end_lineno or node.lineno)]
        candidates = set()
        for node in holding:
            above = node.lineno - 1
            while above >= 1 and self.lines[above - 1].strip().startswith("#"):
                candidates.add(above)
                above -= 1
            if node is min(holding, key=lambda n: (n.end_lineno or n.lineno) - n.lineno):
                candidates |= set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        for number in sorted(candidates):
            match = self.comments.get(number)
            if match and match["reason"] and rule in self._codes(match):
                return match["reason"]
        return None


# -- the lint ---------------------------------------------------------------------------------


def lint(
    config: Config,
    revisions: Sequence[Script],
    dialect: str,
    script: ScriptDirectory | None = None,
    ask: sa.URL | None = None,
) -> Report:
    """The findings of ``revisions`` (oldest first) for ``dialect``. ``ask``: on MariaDB, a
    database URL whose server is asked how it would run each ALTER (``ask_mariadb``)."""
    script = script or ScriptDirectory.from_config(config)
    notes: list[str] = []
    problems: list[str] = []
    read: list[tuple[Script, Path, _Acknowledgements, list[Recorded]]] = []
    # Only asking MariaDB reads the SQL of Alembic's operations (rendering it was 70% of the
    # lint's time on a history of new tables)
    with reading(config, script, dialect, render=ask is not None and dialect == "mariadb") as operations:
        for revision in revisions:
            path = Path(revision.module.__file__)
            acknowledgements = _Acknowledgements(path)
            problems += acknowledgements.problems
            recorded, stopped = operations(revision)
            if stopped:
                notes.append(
                    f"{_shown(path)}: {revision.revision} was read only up to its last operation before: {stopped}"
                )
            read.append((revision, path, acknowledgements, recorded))
    if ask is not None and dialect == "mariadb" and read:
        notes += ask_mariadb(config, [(revision, recorded) for revision, _, _, recorded in read], ask, script)
    findings: list[Finding] = []
    state = _State()
    waits = RULES["lock-timeout"].applies_to(dialect) and not ddl_timeout(config)
    for revision, path, acknowledgements, recorded in read:
        state.new_tables, state.locked = set(), set()  # (a run is one transaction; a revision at a time here)
        waited = False
        for item in recorded:
            if item.in_autocommit_block:
                state.locked.clear()  # the block committed what came before it
            codes = {}
            if waits and not waited and _on_existing_table(item, state.new_tables):
                waited = True  # once per revision
                codes["lock-timeout"] = _operation_name(item)
            codes.update(_matches(item.operation, item.batch_table, dialect, state, item.in_autocommit_block))
            if item.asked is not None:
                online = not (item.asked.blocks_reads or item.asked.blocks_writes)
                for code in [code for code in codes if dialect in RULES[code].effects]:
                    if online and RULES[code].breaks is None and dialect not in RULES[code].fails_with_rows:
                        del codes[code]  # the server runs it online: no guess stands against its answer
                if not online and not any(dialect in RULES[code].effects for code in codes):
                    codes["blocking-alter"] = _said(item)
            for code, said in codes.items():
                rule = RULES[code]
                if not rule.applies_to(dialect):
                    continue
                asked = item.asked if item.asked is not None and dialect in rule.effects else None
                findings.append(
                    Finding(
                        path=_shown(path),
                        line=item.line,
                        revision=revision.revision,
                        rule=code,
                        dialect=dialect,
                        operation=said,
                        message=rule.message(dialect, asked),
                        acknowledged=acknowledgements.reason(item.line, code),
                    )
                )
    return Report(dialect, [revision.revision for revision in revisions], findings, notes, problems)


TABLE_OPERATIONS = (
    ops.AddColumnOp,
    ops.AlterColumnOp,
    ops.DropColumnOp,
    ops.CreateIndexOp,
    ops.DropIndexOp,
    ops.AddConstraintOp,
    ops.DropConstraintOp,
    ops.RenameTableOp,
    ops.DropTableOp,
)


def _on_existing_table(item: Recorded, new_tables: set[str]) -> bool:
    """Whether the operation locks a table that was there before its revision."""
    operation = item.operation
    if isinstance(operation, ops.ExecuteSQLOp):
        text = str(getattr(operation.sqltext, "text", operation.sqltext))
        return any(LOCKING_SQL.match(statement) for statement in _statements(text))
    if isinstance(operation, ops.CreateTableOp):  # a foreign key locks the table it refers to
        referred = {
            element.target_fullname.split(".")[-2]
            for constraint in operation.to_table().constraints
            if isinstance(constraint, sa.ForeignKeyConstraint)
            for element in constraint.elements
        }
        return bool(referred - new_tables - {operation.table_name})
    if isinstance(operation, ops.CreateForeignKeyOp) and operation.referent_table not in new_tables:
        return True
    if isinstance(operation, ReplaceOp) or isinstance(operation, ReversibleOp) and not operation.creates:
        return True  # a view's or routine's lock (PostgreSQL: ACCESS EXCLUSIVE on a replaced view)
    table = item.batch_table or getattr(operation, "table_name", None) or getattr(operation, "source_table", None)
    return isinstance(operation, TABLE_OPERATIONS) and table is not None and table not in new_tables


LOCKING_SQL = re.compile(
    r"^(?:ALTER\s+TABLE|DROP\s+(?:TABLE|INDEX)|CREATE\s+(?:UNIQUE\s+)?INDEX|RENAME|TRUNCATE|LOCK)\b", re.I
)


def _operation_name(item: Recorded) -> str:
    operation = item.operation
    if isinstance(operation, ops.ExecuteSQLOp):
        return _shown_sql(str(getattr(operation.sqltext, "text", operation.sqltext)))
    table = item.batch_table or getattr(operation, "table_name", None) or getattr(operation, "source_table", "")
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(operation).__name__.removesuffix("Op")).lower()
    return f"{name} on {table}"


def _shown_sql(sql: str) -> str:
    shown = " ".join(sql.split()).rstrip(";")
    return f"execute {shown[:77] + '...' if len(shown) > 80 else shown!r}"


def _said(item: Recorded) -> str:
    return _shown_sql(item.sql)


# -- asking MariaDB ---------------------------------------------------------------------------

# What MariaDB is asked, strictest first: the first clause it accepts on an empty copy of the
# table is how it would run the statement on the live table (it refuses an ALGORITHM or a LOCK
# it cannot honour, before touching a row).
ASKED = (
    ("ALGORITHM=INSTANT", Effect("ALGORITHM=INSTANT", blocks_reads=False, blocks_writes=False)),
    ("ALGORITHM=INPLACE, LOCK=NONE", Effect("ALGORITHM=INPLACE", blocks_reads=False, blocks_writes=False, grows=True)),
    (
        "ALGORITHM=INPLACE, LOCK=SHARED",
        Effect("ALGORITHM=INPLACE, LOCK=SHARED", blocks_reads=False, blocks_writes=True, grows=True),
    ),
    (
        "ALGORITHM=COPY, LOCK=SHARED",
        Effect("ALGORITHM=COPY", blocks_reads=False, blocks_writes=True, rewrites=True, grows=True),
    ),
    (
        "ALGORITHM=COPY, LOCK=EXCLUSIVE",
        Effect("ALGORITHM=COPY, LOCK=EXCLUSIVE", blocks_reads=True, blocks_writes=True, rewrites=True, grows=True),
    ),
)
SESSION_SETTING = re.compile(r"^SET\s+(?:SESSION\s+|@@)?\w+\s*=\s*[^;]*;?$", re.I)
ASKABLE = re.compile(
    r"^(?P<head>ALTER\s+TABLE\s+|CREATE\s+(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\s+\S+\s+ON\s+"
    r"|DROP\s+INDEX\s+\S+\s+ON\s+)(?P<table>`[^`]+`|\w+)(?P<rest>(?:[\s(].*)?)$",
    re.I | re.S,
)


def ask_mariadb(
    config: Config,
    revisions: Sequence[tuple[Script, list[Recorded]]],
    url: sa.URL,
    script: ScriptDirectory | None = None,
) -> list[str]:
    """Set ``asked`` on each recorded ALTER, CREATE INDEX and DROP INDEX of an existing table:
    how the server would run it. For each revision with such a statement (one on a table it
    makes itself has nothing to ask), a scratch database beside ``url`` is upgraded to just
    before it, and its statements run on empty copies of their tables with each clause of
    ASKED in turn. No scratch database is made when there is nothing to ask (a history of new
    tables: 2.4 s of a 100-revision suite went there). Returns notes (the server could not be
    asked, or not for every revision)."""
    from migrations.failures import cannot_connect, describe
    from migrations.settings import run_on_connection
    from migrations.squash import scratch_database, upgrade_on

    asking = [(revision, recorded) for revision, recorded in revisions if _askable(recorded)]
    if not asking:
        return []

    def walk(connection: sa.Connection) -> list[str]:
        for revision, recorded in asking:
            parents = revision.down_revision
            for parent in [parents] if isinstance(parents, str) else list(parents or ()):
                try:  # to just before it (a parent already there: nothing runs)
                    upgrade_on(config, parent, connection, data=True, script=script)
                except Exception as error:  # the rest stays with the rules
                    return [
                        f"MariaDB was not asked about {revision.revision} or the revisions after it: upgrading "
                        f"the scratch database to {parent} failed: {describe(error)}"
                    ]
            copies: dict[str, str] = {}
            try:
                for item in recorded:
                    if SESSION_SETTING.match(item.sql.strip()):  # SET foreign_key_checks = 0, ...: as the revision runs
                        connection.exec_driver_sql(item.sql.strip().rstrip(";"))
                        continue
                    item.asked = _ask(connection, item.sql, copies)
            finally:
                for copy in copies.values():
                    connection.exec_driver_sql(f"DROP TABLE IF EXISTS `{copy}`")
                if connection.in_transaction():
                    connection.commit()  # the revision runs as alembic runs it: not in a transaction of ours
        return []

    try:
        with scratch_database(url, "lint") as scratch:
            return run_on_connection(scratch, walk, cannot_connect)
    except CommandError as error:
        return [f"MariaDB was not asked ({error}); its findings are the rules'"]


def _askable(recorded: list[Recorded]) -> bool:
    """Whether a revision runs a statement the server can be asked about, on a table it does
    not make itself (those are new and empty: nothing to ask, and no finding)."""
    made = {item.operation.table_name.lower() for item in recorded if isinstance(item.operation, ops.CreateTableOp)}
    asked = (_askable_statement(item.sql) for item in recorded)
    return any(match and match["table"].strip("`").lower() not in made for match in asked)


def _askable_statement(sql: str) -> re.Match[str] | None:
    """The ASKABLE match of ``sql`` when it is one such statement, else None."""
    statements = [statement for statement in _statements(sql) if statement]
    return ASKABLE.match(statements[0]) if len(statements) == 1 else None


def _ask(connection: sa.Connection, sql: str, copies: dict[str, str]) -> Effect | None:
    match = _askable_statement(sql)
    if match is None:
        return None
    table = match["table"].strip("`")
    if table not in copies:
        if not connection.dialect.has_table(connection, table):
            return None  # made in this revision, or not a table of this database
        copies[table] = f"lint_copy_{len(copies)}_{table}"[:64]
        connection.exec_driver_sql(f"CREATE TABLE `{copies[table]}` LIKE `{table}`")
    dropped = re.match(r"^DROP\s+INDEX\s+(?P<name>\S+)\s+ON\s+$", match["head"], re.I)
    if dropped:  # MariaDB's DROP INDEX takes no ALGORITHM: the same as an ALTER TABLE
        statement, alter = f"ALTER TABLE `{copies[table]}` DROP INDEX {dropped['name']}{match['rest']}", True
    else:
        statement = f"{match['head']}`{copies[table]}`{match['rest']}"
        alter = match["head"].upper().startswith("ALTER")
    for clause, effect in ASKED:
        try:
            connection.exec_driver_sql(statement + (f", {clause}" if alter else f" {clause.replace(',', '')}"))
        except sa.exc.DBAPIError as error:
            if error_codes(error) & REFUSED:
                continue  # it cannot run that way
            return None  # another error: the question was not understood; the rules answer
        return effect
    return None


# ER_ALTER_OPERATION_NOT_SUPPORTED, ..._REASON, ER_NOT_SUPPORTED_YET (an INSTANT that cannot be)
REFUSED = {1845, 1846, 1235}
