"""The deploy lint's claims, measured (migrations/deploy_lint.py, proofs/locks.py).

For each rule, the SQL Alembic writes for an example of its operation runs on a real table with
rows on the server under test, while a second connection reads and writes with a short
timeout (PostgreSQL: which lock ``pg_locks`` shows). What the rule says it does there (its lock,
blocked reads and writes, a rewrite, a time that grows with the rows) must be what was
measured; where the lint stays silent (the safe ways it recommends, an operation that is
harmless on this database), the measurement must show no harm either. On MariaDB the lint asks
the server how each ALTER would run, on an empty copy: that answer must agree with the
measurement too. Failing on a table with rows is tried on every database, SQLite included.

With ``DEPLOY_LINT_TABLE=<file>`` each measurement is appended to that file as a JSON line:
``benchmarks/deploy_lint_table.py`` makes the README's table of rules x databases from them.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import URL, create_engine, text
from sqlalchemy.pool import NullPool

from migrations import deploy_lint
from migrations.replaceable import ReplaceableObject
from proofs.helpers import run_in_project
from proofs.locks import Inconclusive, Measured, measure
from proofs.test_stairway import HEAD, revision_source

TABLE = "CREATE TABLE t (id integer PRIMARY KEY, x integer NOT NULL, s varchar(100), n integer)"
NO_KEY = "CREATE TABLE t (id integer NOT NULL, x integer NOT NULL)"
BOTH = ("postgresql", "mariadb")


class Case:
    """An operation as a revision writes it, the table it runs on, and what the lint says of it:
    ``rule`` (None: the lint says nothing, the operation must do no harm)."""

    def __init__(
        self,
        name: str,
        rule: str | None,
        operation: Callable[[Operations], object],
        dialects: tuple[str, ...] = BOTH,
        setup: tuple[str, ...] = (TABLE,),
        concurrently: bool = False,
    ) -> None:
        self.name, self.rule, self.operation, self.dialects = name, rule, operation, dialects
        self.setup, self.concurrently = setup, concurrently


def _fk(**kw) -> Callable[[Operations], object]:
    return lambda op: op.create_foreign_key("fk_t_x", "t", "t", ["x"], ["id"], **kw)


CASES = [
    Case("create_index", "add-index", lambda op: op.create_index("ix_t_x", "t", ["x"])),
    Case(
        "drop_index",
        "drop-index",
        lambda op: op.drop_index("ix_t_x", table_name="t"),
        setup=(TABLE, "CREATE INDEX ix_t_x ON t (x)"),
    ),
    Case(
        "create_unique_constraint",
        "add-unique-constraint",
        lambda op: op.create_unique_constraint("uq_t_x", "t", ["x"]),
    ),
    Case(
        "create_primary_key", "add-primary-key", lambda op: op.create_primary_key("pk_t", "t", ["id"]), setup=(NO_KEY,)
    ),
    Case("create_foreign_key", "add-foreign-key", _fk()),
    Case(
        "create_check_constraint",
        "add-check-constraint",
        lambda op: op.create_check_constraint("ck_t_x", "t", "x >= 0"),
    ),
    Case(
        "add_column with gen_random_uuid()",
        "add-column-volatile-default",
        lambda op: op.add_column("t", sa.Column("u", sa.Uuid(), server_default=sa.text("gen_random_uuid()"))),
        dialects=("postgresql",),
    ),
    Case(
        "add_column, stored generated",
        "add-generated-column",
        lambda op: op.add_column("t", sa.Column("g", sa.Integer(), sa.Computed("x + 1", persisted=True))),
    ),
    Case(
        "alter_column integer to bigint",
        "change-type",
        lambda op: op.alter_column(
            "t", "x", type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False
        ),
    ),
    Case(
        "alter_column nullable=False",
        "set-not-null",
        lambda op: op.alter_column("t", "n", nullable=False, existing_type=sa.Integer()),
    ),
    Case(
        "add_column, then UPDATE in the same transaction",
        "backfill-under-lock",
        lambda op: (op.add_column("t", sa.Column("c", sa.Integer())), op.execute("UPDATE t SET c = x")),
        dialects=("postgresql",),
    ),
    # What the lint recommends, or lets pass: no harm measured.
    Case(
        "create_index concurrently",
        None,
        lambda op: op.create_index("ix_t_x", "t", ["x"], postgresql_concurrently=True),
        dialects=("postgresql",),
        concurrently=True,
    ),
    Case("create_foreign_key NOT VALID", None, _fk(postgresql_not_valid=True), dialects=("postgresql",)),
    Case(
        "create_check_constraint NOT VALID",
        None,
        lambda op: op.create_check_constraint("ck_t_x", "t", "x >= 0", postgresql_not_valid=True),
        dialects=("postgresql",),
    ),
    Case(
        "VALIDATE CONSTRAINT",
        None,
        lambda op: op.execute("ALTER TABLE t VALIDATE CONSTRAINT ck_t_x"),
        dialects=("postgresql",),
        setup=(TABLE, "ALTER TABLE t ADD CONSTRAINT ck_t_x CHECK (x >= 0) NOT VALID"),
    ),
    Case(
        "alter_column nullable=False with a valid CHECK (n IS NOT NULL)",
        None,
        lambda op: op.alter_column("t", "n", nullable=False, existing_type=sa.Integer()),
        dialects=("postgresql",),
        setup=(TABLE, "ALTER TABLE t ADD CONSTRAINT ck_t_n CHECK (n IS NOT NULL)"),
    ),
    Case(
        "alter_column VARCHAR(100) to VARCHAR(200)",
        None,
        lambda op: op.alter_column("t", "s", type_=sa.String(200), existing_type=sa.String(100)),
        dialects=("postgresql",),
    ),
    Case(
        "add_column with a constant default",
        None,
        lambda op: op.add_column("t", sa.Column("c", sa.Integer(), nullable=False, server_default="0")),
    ),
]
LOCKS = {
    "SHARE": "ShareLock",
    "SHARE ROW EXCLUSIVE": "ShareRowExclusiveLock",
    "SHARE UPDATE EXCLUSIVE": "ShareUpdateExclusiveLock",
    "ACCESS EXCLUSIVE": "AccessExclusiveLock",
}


def rules_dialect(dialect: str) -> str:
    return "mariadb" if dialect in ("mysql", "mariadb") else dialect


def sql_of(case: Case, dialect: str) -> list[str]:
    """The statements Alembic writes for the case's operation on ``dialect`` (offline)."""
    output = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="mysql" if dialect == "mariadb" else dialect, opts={"as_sql": True, "output_buffer": output}
    )
    case.operation(Operations(context))
    return list(deploy_lint._statements(output.getvalue()))


def record(dialect: str, case: Case, measured: Measured, asked: deploy_lint.Effect | None = None) -> None:
    path = os.environ.get("DEPLOY_LINT_TABLE")
    if path:
        row = {"dialect": dialect, "case": case.name, "rule": case.rule, **measured.__dict__}
        row["asked"] = asked.lock if asked else None
        with open(path, "a") as file:
            file.write(json.dumps(row) + "\n")


@pytest.fixture
def url(dialect: str, request: pytest.FixtureRequest) -> URL:
    if dialect == "sqlite":
        pytest.skip("SQLite has one writer at a time and no lock modes: locks are measured on the servers")
    return request.getfixturevalue("database_url")


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_what_each_rule_says_is_what_the_server_does(case: Case, url: URL, dialect: str):
    """A time-based verdict (does it grow with the rows?) can be thrown by a busy machine: a
    measurement that disagrees is taken twice more, and the majority stands."""
    dialect = rules_dialect(dialect)
    if dialect not in case.dialects:
        pytest.skip(f"not a {dialect} case")
    statements = sql_of(case, dialect)
    asked = ask(url, case, statements) if dialect == "mariadb" else None
    if dialect == "mariadb":
        assert asked is not None, f"the lint did not ask MariaDB about {statements}"
    rule = deploy_lint.RULES.get(case.rule) if case.rule else None
    claim = rule.effects.get(dialect) if rule else None
    measurements = [measured_or_none(url, case, statements)]
    found = [disagreements(measurements[0], claim, asked, dialect)]
    if found[0]:  # twice more: the majority stands
        for _ in range(2):
            measurements.append(measured_or_none(url, case, statements))
            found.append(disagreements(measurements[-1], claim, asked, dialect))
    agreeing = [measured for measured, disagreed in zip(measurements, found, strict=True) if not disagreed]
    assert len(agreeing) * 2 > len(measurements), "; ".join(disagreed for disagreed in found if disagreed)
    record(dialect, case, agreeing[0], asked)


def measured_or_none(url: URL, case, statements: list[str]) -> Measured | None:
    """The case measured, or None when the instrument gave no verdict on any table size it tried
    (Inconclusive: on a loaded machine an INSTANT ALTER can end before a probe is shown beside it),
    which counts as a disagreement: measured again, the majority stands."""
    try:
        return measure(url, case.setup, statements, "t", transaction=not case.concurrently)
    except Inconclusive:
        return None


def disagreements(measured: Measured | None, claim: deploy_lint.Effect | None, asked, dialect: str) -> str:
    """What in the measurement contradicts the rule's claim (or the lint's silence, or MariaDB's answer)."""
    if measured is None:
        return "no verdict: the statement ended before a probe could be shown to run beside it (Inconclusive)"
    found = []
    if claim is not None:  # what the rule says, without asking
        said = (claim.blocks_reads, claim.blocks_writes, claim.rewrites, claim.grows)
        if said != (measured.blocks_reads, measured.blocks_writes, measured.rewrites, measured.grows_with_rows):
            found.append(f"the rule says {claim.describe()}; measured {measured}")
        if dialect == "postgresql" and LOCKS[claim.lock] != measured.lock:
            found.append(f"the rule says {claim.lock}; measured {measured.lock}")
    elif dialect == "postgresql":  # silent: nothing rewritten, no lock held for long
        if measured.rewrites or measured.grows_with_rows and measured.blocks_writes:
            found.append(f"the lint is silent; measured {measured}")
    if asked is not None:  # MariaDB's own answer, which the lint reports instead
        if (asked.blocks_reads, asked.blocks_writes) != (measured.blocks_reads, measured.blocks_writes):
            found.append(f"MariaDB answered {asked.lock}; measured {measured}")
    return "; ".join(found)


def ask(url: URL, case: Case, statements: list[str]) -> deploy_lint.Effect | None:
    """How the lint's question to MariaDB (an empty copy of the table) says the case would run."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            for statement in case.setup:
                connection.exec_driver_sql(statement)
            copies: dict[str, str] = {}
            (statement,) = statements
            try:
                return deploy_lint._ask(connection, statement, copies)
            finally:
                for name in [*copies.values(), "t"]:
                    connection.exec_driver_sql(f"DROP TABLE IF EXISTS `{name}`")
    finally:
        engine.dispose()


NOT_NULL = Case(
    "add_column NOT NULL, no default",
    "add-column-not-null",
    lambda op: op.add_column("t", sa.Column("c", sa.Integer(), nullable=False)),
    dialects=("postgresql", "mariadb", "sqlite"),
)
CONCURRENTLY = Case(
    "create_index concurrently in a transaction",
    "concurrently-in-transaction",
    lambda op: op.create_index("ix_t_x", "t", ["x"], postgresql_concurrently=True),
    dialects=("postgresql",),
)


@pytest.mark.parametrize("case", [NOT_NULL, CONCURRENTLY], ids=[NOT_NULL.name, CONCURRENTLY.name])
def test_what_fails_on_a_table_with_rows_fails(case: Case, database_url: URL, dialect: str):
    """A rule that says its statement fails (on a table with rows, or always) on a database: it
    does, in a transaction as a migration runs it; where the rule does not say so, it does not."""
    dialect = rules_dialect(dialect)
    if dialect not in case.dialects:
        pytest.skip(f"not a {dialect} case")
    rule = deploy_lint.RULES[case.rule]
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text(TABLE))
            connection.execute(text("INSERT INTO t (id, x, s, n) VALUES (1, 1, 'a', 1)"))
            connection.commit()
            failed = None
            try:
                with connection.begin():
                    for statement in sql_of(case, dialect):
                        connection.exec_driver_sql(statement)
            except sa.exc.DBAPIError as error:
                failed = error
            assert (failed is not None) == (dialect in rule.fails_with_rows or dialect in rule.fails), failed
    finally:
        engine.dispose()


def test_a_revision_waits_for_a_live_table_at_most_ddl_lock_timeout(project_copy, new_database, dialect):
    """The lock-timeout rule's safe way, measured: a query running on the table holds the
    revision's ALTER back; with ``ddl_lock_timeout`` the run gives up after it (instead of
    waiting, with every query on the table queued behind it), says so in one line, leaves
    nothing applied (PostgreSQL: the run is one transaction; MariaDB: the ALTER never began),
    and runs once the table is quiet."""
    if dialect == "sqlite":
        pytest.skip("SQLite: a migration waits for the database's write lock, as long as migration_lock_timeout")
    versions = project_copy / "migrations" / "versions"
    table = 'op.create_table("probe_q", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("x", sa.Integer()))'
    (versions / "probe_t1.py").write_text(revision_source("t1", HEAD, table, 'op.drop_table("probe_q")'))
    added = 'op.add_column("probe_q", sa.Column("y", sa.Integer()))'
    (versions / "probe_t2.py").write_text(revision_source("t2", "t1", added, 'op.drop_column("probe_q", "y")'))
    url = new_database()
    assert run_in_project(url, "-m", "alembic", "upgrade", "t1", cwd=project_copy).returncode == 0
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as reader:
            reader.execute(text("SELECT * FROM probe_q")).all()  # its transaction stays open: a running report
            started = time.monotonic()
            result = run_in_project(url, "-m", "alembic", "upgrade", "head", cwd=project_copy, DDL_LOCK_TIMEOUT="1")
            waited = time.monotonic() - started
            reader.rollback()
        assert result.returncode != 0 and waited < 15, (waited, result.stdout + result.stderr)
        (last,) = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("FAILED: ")]
        assert "revision t2 (probe_t2.py) failed" in last and "longer than ddl_lock_timeout allows" in last, last
        with engine.connect() as connection:
            assert [column["name"] for column in sa.inspect(connection).get_columns("probe_q")] == ["id", "x"]
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "t1"
        ran = run_in_project(url, "-m", "alembic", "upgrade", "head", cwd=project_copy, DDL_LOCK_TIMEOUT="1")
        assert ran.returncode == 0, ran.stdout + ran.stderr
    finally:
        engine.dispose()


# -- The running version: what it did before the revision fails after it ---------------------

FUNCTION_BODY = {
    "postgresql": "RETURNS integer AS $$ SELECT 1 $$ LANGUAGE sql",
    "mariadb": "BEGIN SELECT 1; END",
}


def _routine(dialect: str, arguments: str) -> ReplaceableObject:
    name = "probe_f" if dialect == "postgresql" else "probe_p"
    return ReplaceableObject(f"{name}({arguments})", FUNCTION_BODY[dialect])


def _change_signature(op: Operations, dialect: str) -> None:
    from migrations.replaceable import FUNCTION, PROCEDURE, ReplaceOp

    kind = FUNCTION if dialect == "postgresql" else PROCEDURE
    old = "a integer" if dialect == "postgresql" else "IN a integer"
    new = "a integer, b integer" if dialect == "postgresql" else "IN a integer, IN b integer"
    op.invoke(ReplaceOp(kind, _routine(dialect, old), _routine(dialect, new)))


def _batch(table: str, change: Callable) -> Callable[[Operations, str], None]:
    def run(op: Operations, dialect: str) -> None:
        with op.batch_alter_table(table) as batch:
            change(batch)

    return run


# rule: (what the revision does, what the version still serving runs before and after it, and,
# before both, anything the case needs)
RUNNING_VERSION = {
    "add-column-not-null": (
        _batch("t", lambda batch: batch.add_column(sa.Column("c", sa.Integer(), nullable=False))),
        "INSERT INTO t (id, x, s, n) VALUES (2, 2, 'b', 2)",
        ["DELETE FROM t"],  # with rows, PostgreSQL and SQLite refuse the column itself (measured above)
    ),
    "narrow-type": (
        _batch("t", lambda batch: batch.alter_column("s", type_=sa.String(5), existing_type=sa.String(100))),
        "INSERT INTO t (id, x, s, n) VALUES (2, 2, 'longer than five', 2)",
        [],
    ),
    "writes-null": (
        _batch("t", lambda batch: batch.alter_column("n", nullable=False, existing_type=sa.Integer())),
        "INSERT INTO t (id, x, s, n) VALUES (2, 2, 'b', NULL)",
        [],
    ),
    "drop-default": (
        _batch("t", lambda batch: batch.alter_column("d", server_default=None, existing_type=sa.Integer())),
        "INSERT INTO t (id, x, s, n) VALUES (2, 2, 'b', 2)",
        [],
    ),
    "drop-column": (_batch("t", lambda batch: batch.drop_column("n")), "SELECT id, n FROM t", []),
    "rename-column": (
        _batch("t", lambda batch: batch.alter_column("n", new_column_name="m", existing_type=sa.Integer())),
        "SELECT id, n FROM t",
        [],
    ),
    "drop-table": (lambda op, dialect: op.drop_table("u"), "SELECT id FROM u", []),
    "rename-table": (lambda op, dialect: op.rename_table("u", "u2"), "SELECT id FROM u", []),
    "drop-object": (lambda op, dialect: op.drop_view(ReplaceableObject("v", "")), "SELECT id FROM v", []),
    "change-signature": (
        _change_signature,
        {"postgresql": "SELECT probe_f(1)", "mariadb": "CALL probe_p(1)"},
        [],
    ),
}
RUNNING_SETUP = [
    "CREATE TABLE t (id integer PRIMARY KEY, x integer NOT NULL, s varchar(100), n integer,"
    " d integer NOT NULL DEFAULT 0)",
    "INSERT INTO t (id, x, s, n) VALUES (1, 1, 'a', 1)",
    "CREATE TABLE u (id integer PRIMARY KEY)",
    "CREATE TABLE w (id integer PRIMARY KEY)",
    "CREATE VIEW v AS SELECT id FROM w",  # not on t: SQLite's batch cannot rename a table a view reads
]


@pytest.mark.parametrize("rule", sorted(RUNNING_VERSION))
def test_what_the_running_version_does_fails_after_a_rule_says_it_breaks(rule: str, database_url: URL, dialect: str):
    """Each rule that says the version still serving breaks: a statement of that version runs
    before the revision and fails after it, on every database the rule is reported on; where a
    rule is not reported (narrowing a type on SQLite, which does not enforce lengths), it does
    not fail."""
    dialect = rules_dialect(dialect)
    change, statement, prepare = RUNNING_VERSION[rule]
    statement = statement.get(dialect) if isinstance(statement, dict) else statement
    reported = deploy_lint.RULES[rule].applies_to(dialect)
    if statement is None:
        assert not reported, f"{rule} is reported on {dialect}: give its running version's statement"
        pytest.skip(f"no {rule} on {dialect}")
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            for setup in [*RUNNING_SETUP, *prepare]:
                connection.exec_driver_sql(setup)
            if rule == "change-signature":
                _create_routine(connection, dialect)
            connection.commit()
            before = connection.begin()
            connection.exec_driver_sql(statement)  # works before the revision (and is undone)
            before.rollback()
            with connection.begin():
                change(Operations(MigrationContext.configure(connection)), dialect)
            failed = None
            try:
                with connection.begin():
                    connection.exec_driver_sql(statement)
            except sa.exc.DBAPIError as error:
                failed = error
        assert (failed is not None) == reported, f"{rule} on {dialect}: reported {reported}, failed: {failed}"
    finally:
        engine.dispose()


def _create_routine(connection: sa.Connection, dialect: str) -> None:
    from migrations.replaceable import FUNCTION, PROCEDURE

    kind, arguments = (FUNCTION, "a integer") if dialect == "postgresql" else (PROCEDURE, "IN a integer")
    connection.exec_driver_sql(kind.create(_routine(dialect, arguments)))


def test_without_a_lock_timeout_ddl_waits_for_a_running_query_and_queues_every_query_behind_it(url: URL, dialect: str):
    """The lock-timeout rule's claim: a brief ALTER on a table a query is using waits for that
    query without limit, and meanwhile a plain SELECT of the table (which alone would not wait)
    waits behind the ALTER."""
    dialect = rules_dialect(dialect)
    engine = create_engine(url, poolclass=NullPool)
    waiting = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE q%'"
        if dialect == "postgresql"
        else "SELECT count(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table metadata lock'"
        " AND INFO LIKE 'ALTER TABLE q%'"
    )
    try:
        with engine.connect() as setup:
            setup.exec_driver_sql("CREATE TABLE q (id integer PRIMARY KEY)")
            setup.commit()
        report, migration, reader = engine.connect(), engine.connect(), engine.connect()
        done = threading.Event()
        thread = threading.Thread(target=lambda: (_alter(migration), done.set()), daemon=True)
        try:
            report.exec_driver_sql("SELECT * FROM q").all()  # a query still running: its transaction is open
            thread.start()
            # each poll its own transaction: PostgreSQL shows a transaction one snapshot of
            # pg_stat_activity, taken at its first read (a poll before the ALTER waited saw none after)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watch:
                for _ in range(250):
                    if watch.execute(text(waiting)).scalar():
                        break
                    time.sleep(0.02)
                else:
                    pytest.fail("the ALTER did not wait for the running query")
            time.sleep(0.3)
            assert not done.is_set()  # no limit: still waiting
            stopped = None
            try:
                with reader.begin():
                    if dialect == "postgresql":
                        reader.exec_driver_sql("SET LOCAL lock_timeout = '150ms'")
                        reader.exec_driver_sql("SELECT * FROM q").all()
                    else:
                        reader.exec_driver_sql("SET STATEMENT max_statement_time=0.15 FOR SELECT * FROM q").all()
            except sa.exc.DBAPIError as error:
                stopped = error
            assert stopped is not None, "a SELECT did not queue behind the waiting ALTER"
        finally:
            report.rollback()  # the running query ends: the ALTER runs
            thread.join(10)
            for connection in (reader, report, migration):
                connection.close()
        assert done.is_set()
    finally:
        engine.dispose()


def _alter(connection: sa.Connection) -> None:
    with connection.begin():
        connection.exec_driver_sql("ALTER TABLE q ADD COLUMN c integer")
