"""Ground truth for the safe-deploy lint: what an operation's SQL does to a live table, measured on
a real PostgreSQL or MariaDB server (no mocks). ``measure()`` answers, for the statements an
Alembic operation emits: which lock it takes, whether it blocks concurrent reads, whether it blocks
concurrent writes, whether it rewrites the table, and whether its time grows with the table's size.

How ``measure()`` works, in short (each function says more):

- Everything happens in a scratch space of its own, dropped at the end whatever happens: a schema
  ``lockprobe_<pid>_<random>`` on PostgreSQL (every connection's ``search_path``), a database of
  that name on MariaDB (every connection's default database). ``setup`` and ``table`` are used as
  written, unqualified, so plain names like ``t`` do not clash with other sessions on the server.
- The table is built empty (``setup`` only) and full (``setup``, then ``fill`` with ``rows`` rows),
  and the statements timed on each (the shortest of a few runs); only runs on the full table are
  probed. Growth compares the two times (``_grows``).
- Connection A runs the statements. On PostgreSQL with ``transaction=True`` it runs them inside
  BEGIN and keeps the transaction open while the probes run (a migration holds its locks until
  COMMIT). Otherwise (``transaction=False``, and always on MariaDB, whose DDL commits by itself)
  A runs them in a thread, in autocommit, and the probes run while a statement is still running.
- Probes: a SELECT, an INSERT and an UPDATE of an existing row (or ``probe_write`` instead of the
  last two), each from a connection of its own, all at once, each allowed to wait PROBE_TIMEOUT for
  a lock: a probe the server stops for waiting that long is blocked. They run in autocommit: a
  probe holds nothing once it has returned or been stopped.
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial

from sqlalchemy import URL, Connection, Engine, create_engine, inspect, text, types
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

PROBE_TIMEOUT = 0.15  # seconds a probe may wait for a lock before it counts as blocked
# Rounds of probes after the last statement before one still stopped means a lock held past
# it: MariaDB's max_statement_time also stops a probe slowed by a loaded machine (CI, 2 cores:
# once, after a 512,000-row ALTER), and such a probe passes the next round; a held lock does not.
AFTER_ROUNDS = 3
GROWTH_RATIO = 2  # the full table's time is at least this many times the empty table's...
GROWTH_SCAN_SHARE = 0.5  # ...and longer by at least this share of a full scan of the table (SELECT count(*))...
GROWTH_FLOOR = 0.002  # ...and by at least this many seconds, however fast the scan
SAMPLES = 3  # runs of the statements on the empty table; the shortest counts (runs on the full table: see below)
RETRIES = 3  # times a concurrent run that gave no verdict is run again, on a bigger table
POLL = 0.001  # seconds between two looks at what connection A is doing
# Rows in the full table, by default: enough for a statement that grows with the table to outlast a
# probe's PROBE_TIMEOUT while it runs (a MariaDB ALGORITHM=COPY of 300,000 narrow rows: ~0.25 s),
# few enough to fill in a fraction of a second (PostgreSQL probes in an open transaction: no race).
DEFAULT_ROWS = {"postgresql": 200_000, "mariadb": 300_000}

# PostgreSQL's table lock modes, weakest first (the table in "Explicit Locking" of its manual).
PG_LOCK_MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)

# MariaDB processlist states in which an ALTER is starting or finishing, not at its work on the
# rows: "preparing for alter table" and "Committing alter table to storage engine" are the short
# phases of an INPLACE/INSTANT ALTER that hold an exclusive metadata lock. Any other state of a
# running statement (e.g. "copy to tmp table", "altering table", "Enabling keys") is its work.
MARIADB_NOT_AT_WORK = frozenset(
    {
        "",
        "starting",
        "init",
        "checking permissions",
        "Opening tables",
        "setup",
        "After create",
        "preparing for alter table",
        "Committing alter table to storage engine",
        "End of update loop",
        "query end",
        "closing tables",
        "freeing items",
        "Writing to net",
        "Reset for next command",
        "Waiting for table metadata lock",
    }
)

# The errors a probe gets when the server stops it for waiting: PostgreSQL's lock_timeout
# (SQLSTATE 55P03); MariaDB's max_statement_time (1969), or a lock wait timeout (1205).
PG_LOCK_NOT_AVAILABLE = "55P03"
MARIADB_STOPPED = (1969, 1205)


@dataclass(frozen=True)
class Measured:
    """What the statements did to the table, as measured (see ``measure``)."""

    blocks_reads: bool  # a SELECT from a 2nd connection was blocked while the statement ran / its transaction was open
    blocks_writes: bool  # an INSERT or an UPDATE of an existing row (or probe_write) from a 2nd connection was blocked
    rewrites: bool  # the table was rewritten (PG: relfilenode changed; MariaDB: rows copied, or a new InnoDB table id)
    grows_with_rows: bool  # the statements take much longer on the full table than on the empty one
    lock: str | None  # PostgreSQL: the strongest lock mode A held on the table; None on MariaDB
    seconds_empty: float  # the statements' time on the empty table (the shortest of SAMPLES runs)
    seconds_full: float  # their time on the full table


class Inconclusive(RuntimeError):
    """A concurrent run in which a probe could not be shown to have run while a statement did;
    ``factor``: how many times bigger the table should be for the statement to outlast its probes."""

    def __init__(self, message: str, factor: int) -> None:
        super().__init__(message)
        self.factor = factor


def measure(
    url: URL,
    setup: Sequence[str],
    statements: Sequence[str],
    table: str,
    *,
    rows: int | None = None,
    fill: str | None = None,
    transaction: bool = True,
    probe_write: str | None = None,
) -> Measured:
    """Measure what ``statements`` do to ``table`` on the server of ``url`` (PostgreSQL or MariaDB).

    ``setup`` builds the table (and anything else the statements need); ``fill`` fills it with
    ``rows`` rows (the text ``{rows}`` in it is replaced by the number; ``rows`` None: DEFAULT_ROWS,
    200,000 on PostgreSQL, 300,000 on MariaDB). Without ``fill``, every column gets a value made
    from the row number n, 1 to ``rows`` (see ``_Generated``). ``table`` is the table's name as
    SQL is to say it, unqualified (it lives in the scratch space: see the module's docstring).
    ``statements`` are the operation's SQL as ``alembic upgrade --sql`` prints it, without
    BEGIN/COMMIT or the alembic_version update. ``probe_write`` replaces the INSERT and UPDATE
    probes with a write of your own. ``transaction`` is PostgreSQL's: False for statements that
    cannot run in a transaction (CREATE INDEX CONCURRENTLY); MariaDB always runs them in
    autocommit, as its DDL commits by itself.

    - Blocking: see ``_Probes``; on the full table only, while A's transaction is open
      (``_measure_full_in_transaction``) or while A's statement runs (``_measure_full_concurrently``).
    - Lock (PostgreSQL): the strongest granted mode pg_locks shows A's backend holding on the
      table's oid: read while A's transaction is open, or, with ``transaction=False``, every time
      A is looked at while its statements run (None if A was never seen holding one).
    - Rewrite: PostgreSQL: the table's pg_class.relfilenode after the statements differs from the
      one before. MariaDB: a statement reported as many affected rows as the table had (ALGORITHM=
      COPY), or the table's InnoDB table id (information_schema.INNODB_SYS_TABLES) changed (a
      rebuild, COPY or INPLACE).
    - Growth: see ``_grows``: the full table's time against the empty table's, and against the
      time of a full scan of the full table.

    With ``transaction=False`` and on MariaDB, a run that gave no verdict (a statement that grows
    with the table finished before the probes could be shown to have run alongside it) is run
    again on a bigger table (2 to 8 times: what the statement's time says it needs), up to RETRIES
    times; then ``Inconclusive`` is raised. So is it at once when ``fill`` has no ``{rows}``.
    """
    backend = url.get_backend_name()
    if backend not in ("postgresql", "mysql", "mariadb"):  # mysql: the dialect's name for MariaDB too
        raise ValueError(f"measure() needs a PostgreSQL or MariaDB server, not {backend}")
    concurrent = backend != "postgresql" or not transaction
    with _Scratch.on(url) as scratch:
        rows = DEFAULT_ROWS[scratch.backend] if rows is None else rows
        scratch.rebuild(setup)
        generated = _Generated.of(scratch.monitor, scratch, table) if fill is None or probe_write is None else None

        def fill_sql(rows: int) -> str:
            if fill is not None:
                return fill.replace("{rows}", str(rows))
            assert generated is not None
            return generated.fill(rows)

        if concurrent:
            empty = [_run_in_autocommit(scratch, setup, statements) for _ in range(SAMPLES)]
        else:
            empty = _samples_in_transaction(scratch, statements, SAMPLES)
        seconds_empty = [min(sample[i] for sample in empty) for i in range(len(statements))]
        for attempt in range(RETRIES + 1):
            try:
                full = _measure_full_concurrently if concurrent else _measure_full_in_transaction
                return full(scratch, setup, statements, table, fill_sql(rows), generated, probe_write, seconds_empty)
            except Inconclusive as inconclusive:
                if attempt == RETRIES or fill is not None and "{rows}" not in fill:
                    raise
                rows *= inconclusive.factor
    raise AssertionError("unreachable")


# --- the scratch space and its connections ------------------------------------------------


class _Scratch:
    """A schema (PostgreSQL) or database (MariaDB) of this call's own, and its connections: A (the
    statements), the monitor (looks at A, builds the table), and the probes'. All in autocommit."""

    def __init__(self, url: URL) -> None:
        self.backend = "postgresql" if url.get_backend_name() == "postgresql" else "mariadb"
        self.name = f"lockprobe_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.kind = "SCHEMA" if self.backend == "postgresql" else "DATABASE"
        self.cascade = " CASCADE" if self.backend == "postgresql" else ""
        self.engines: list[Engine] = []
        self.connections: list[Connection] = []
        self.admin = self._engine(url)

    @classmethod
    @contextmanager
    def on(cls, url: URL) -> Iterator[_Scratch]:
        """The scratch space, with the monitor and A connected; dropped on the way out."""
        scratch = cls(url)
        try:
            with scratch.admin.connect() as connection:
                connection.exec_driver_sql(f"CREATE {scratch.kind} {scratch.name}")
            scratch.open(url)
            yield scratch
        finally:
            scratch.drop()

    def open(self, url: URL) -> None:
        self.engine = self.admin if self.backend == "postgresql" else self._engine(url.set(database=self.name))
        self.monitor = self.connect()
        self.a = self.connect()
        self.a_id = self.a.exec_driver_sql(
            "SELECT pg_backend_pid()" if self.backend == "postgresql" else "SELECT CONNECTION_ID()"
        ).scalar_one()
        if self.backend == "postgresql":  # A waits for a lock no longer than this: never for ever
            self.a.exec_driver_sql("SET lock_timeout = '30s'")
        else:
            self.a.exec_driver_sql("SET SESSION lock_wait_timeout = 30")

    def _engine(self, url: URL) -> Engine:
        engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.engines.append(engine)
        return engine

    def connect(self) -> Connection:
        """A new autocommit connection in the scratch space; SQL run on it as written (no parameters)."""
        connection = self.engine.connect().execution_options(no_parameters=True)
        self.connections.append(connection)
        if self.backend == "postgresql":
            connection.exec_driver_sql(f"SET search_path TO {self.name}")
        return connection

    def rebuild(self, setup: Sequence[str], fill: str | None = None, table: str | None = None) -> None:
        """Empty the scratch space (drop it, create it again: the connections stay in it), run
        ``setup``, and ``fill``; on PostgreSQL, then VACUUM (ANALYZE) ``table``: a settled table,
        as a live one is, whose first scan does not pay for setting hint bits."""
        self.monitor.exec_driver_sql(f"DROP {self.kind} {self.name}{self.cascade}")
        self.monitor.exec_driver_sql(f"CREATE {self.kind} {self.name}")
        if self.backend != "postgresql":  # the session that dropped its database is left with none
            self.monitor.exec_driver_sql(f"USE {self.name}")
        for sql in setup:
            self.monitor.exec_driver_sql(sql)
        if fill is not None:
            self.monitor.exec_driver_sql(fill)
            if self.backend == "postgresql" and table is not None:
                self.monitor.exec_driver_sql(f"VACUUM (ANALYZE) {table}")

    def drop(self) -> None:
        """Close every connection, drop the scratch space (on a connection of its own), dispose the engines."""
        for connection in self.connections:
            with suppress(Exception):  # a connection already broken: nothing of it to keep
                connection.close()
        try:
            with self.admin.connect() as connection:
                connection.exec_driver_sql(f"DROP {self.kind} IF EXISTS {self.name}{self.cascade}")
        finally:
            for engine in self.engines:
                engine.dispose()

    # What the monitor sees of the table and of connection A.

    def table_identity(self, table: str) -> tuple[object, object]:
        """(the table's oid, its relfilenode) on PostgreSQL; (its InnoDB table id, None) on MariaDB;
        (None, None) when there is no such table (any more)."""
        if self.backend == "postgresql":
            query = "SELECT oid, relfilenode FROM pg_class WHERE oid = to_regclass(:t)"
            row = self.monitor.execute(text(query), {"t": table}).first()
            return (row[0], row[1]) if row else (None, None)
        query = "SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = CONCAT(DATABASE(), '/', :t)"
        return self.monitor.execute(text(query), {"t": table}).scalar(), None

    def relfilenode(self, connection: Connection, oid: object) -> object:
        return connection.execute(text("SELECT relfilenode FROM pg_class WHERE oid = :oid"), {"oid": oid}).scalar()

    def a_locks(self, oid: object) -> set[str]:
        """PostgreSQL: the modes of the granted locks A's backend holds on the table (pg_locks)."""
        query = "SELECT mode FROM pg_locks WHERE pid = :pid AND locktype = 'relation' AND relation = :oid AND granted"
        return set(self.monitor.execute(text(query), {"pid": self.a_id, "oid": oid}).scalars())

    def a_active(self, connection: Connection) -> bool:
        """The server says A is running a statement (asked on ``connection``): PostgreSQL
        pg_stat_activity.state = 'active'; MariaDB a statement in A's processlist row."""
        if self.backend == "postgresql":
            query = "SELECT state = 'active' FROM pg_stat_activity WHERE pid = :id"
        else:
            query = "SELECT INFO IS NOT NULL FROM information_schema.PROCESSLIST WHERE ID = :id"
        return bool(connection.execute(text(query), {"id": self.a_id}).scalar())

    def a_state(self, oid: object) -> tuple[bool, bool, set[str]]:
        """(A is running a statement, A is at its work on the table, lock modes A holds on it).

        PostgreSQL: running is pg_stat_activity.state = 'active' for A's pid; at work is running
        while holding a granted lock on the table. MariaDB: running is a statement in A's
        processlist row (INFO not NULL); at work is running in a state other than the ones an
        ALTER starts and finishes in (MARIADB_NOT_AT_WORK)."""
        if self.backend == "postgresql":
            query = "SELECT state = 'active' FROM pg_stat_activity WHERE pid = :pid"
            active = bool(self.monitor.execute(text(query), {"pid": self.a_id}).scalar())
            modes = self.a_locks(oid) if active else set()
            return active, active and bool(modes), modes
        query = "SELECT STATE, INFO FROM information_schema.PROCESSLIST WHERE ID = :id"
        state, info = self.monitor.execute(text(query), {"id": self.a_id}).one()
        active = info is not None
        return active, active and (state or "") not in MARIADB_NOT_AT_WORK, set()

    def scan_seconds(self, table: str) -> tuple[float, int]:
        """(the shortest of 3 timed ``SELECT count(*)`` of the table, its row count): the time a
        statement that reads every row cannot do without, on this server, now."""
        times, count = [], 0
        for _ in range(3):
            started = time.perf_counter()
            count = self.monitor.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
            times.append(time.perf_counter() - started)
        return min(times), count


# --- rows and probes made from the table's columns ------------------------------------------


class _Generated:
    """The default fill and write probes, made from the table's columns (SQLAlchemy's inspector).

    Each column gets a value made from the row number n: integers n (SMALLINT n % 30000, TINYINT
    n % 100), other numbers n, strings n as text (cut to their length), booleans n % 2 = 0, dates
    and timestamps a day or a second per n from 2000-01-01, UUIDs (PostgreSQL) md5 of n, JSON
    {"n": n}, enums their first value. The primary key always gets its value (PostgreSQL: with
    OVERRIDING SYSTEM VALUE for an identity-always key); other columns with a default, computed
    and identity-always columns are left to the server; a nullable column of a type not listed
    is left NULL, a NOT NULL one raises ValueError (pass ``fill`` and ``probe_write``).

    The fill numbers the rows 1 to ``rows`` (PostgreSQL: generate_series; MariaDB: the SEQUENCE
    engine's seq_1_to_N). The INSERT probe writes one more row, with an n past them; the UPDATE
    probe sets the first column it may set to itself in one existing row (PostgreSQL: the row at
    the first ctid of a scan; MariaDB: ``LIMIT 1``)."""

    def __init__(self, backend: str, table: str, columns: list[str], values: list[str], override: bool, update: str):
        self.backend, self.table, self.columns, self.values = backend, table, columns, values
        self.override = override  # PostgreSQL: OVERRIDING SYSTEM VALUE for an identity-always primary key
        self.update_column = update
        self.probes = 0

    @classmethod
    def of(cls, connection: Connection, scratch: _Scratch, table: str) -> _Generated:
        quote = connection.dialect.identifier_preparer.quote
        inspector = inspect(connection)
        columns = inspector.get_columns(table, schema=scratch.name)
        primary = set(inspector.get_pk_constraint(table, schema=scratch.name)["constrained_columns"])
        names, values, override, update = [], [], False, ""
        for column in columns:
            name, identity = column["name"], column.get("identity") or {}
            always, in_key = bool(identity.get("always")), name in primary
            has_default = column.get("default") is not None or bool(identity) or column.get("autoincrement") is True
            if column.get("computed") or (always and not in_key):
                continue  # the server makes its value
            update = update or ("" if always else quote(name))
            if has_default and not in_key:
                continue  # left to its default
            value = _value(scratch.backend, column["type"])
            if value is None:
                if column["nullable"] or has_default:
                    continue
                raise ValueError(
                    f"no value made here for column {name} ({column['type']}): pass fill= and probe_write="
                )
            override = override or always
            names.append(quote(name))
            values.append(value)
        if not names:
            raise ValueError(f"no column of {table} to fill: pass fill= and probe_write=")
        return cls(scratch.backend, table, names, values, override, update)

    def _insert(self, numbers: str) -> str:
        override = " OVERRIDING SYSTEM VALUE" if self.override else ""
        return (
            f"INSERT INTO {self.table} ({', '.join(self.columns)}){override} "
            f"SELECT {', '.join(self.values)} FROM {numbers}"
        )

    def fill(self, rows: int) -> str:
        if self.backend == "postgresql":
            return self._insert(f"generate_series(1, {rows}) AS g (n)")
        return self._insert(f"(SELECT seq AS n FROM seq_1_to_{rows}) AS g")

    def writes(self) -> list[str]:
        """The write probes for one round: a new row (its n never used before), an existing row updated."""
        self.probes += 1
        writes = [self._insert(f"(SELECT {10**9 + self.probes} AS n) AS g")]
        if self.update_column and self.backend == "postgresql":
            writes.append(
                f"UPDATE {self.table} SET {self.update_column} = {self.update_column} "
                f"WHERE ctid = (SELECT ctid FROM {self.table} LIMIT 1)"
            )
        elif self.update_column:
            writes.append(f"UPDATE {self.table} SET {self.update_column} = {self.update_column} LIMIT 1")
        return writes


def _value(backend: str, type_: types.TypeEngine) -> str | None:
    """SQL for a value of ``type_`` made from the row number ``n``, or None for a type not known here."""
    pg = backend == "postgresql"
    name = type(type_).__name__.upper()
    if isinstance(type_, types.Boolean):
        return "(n % 2 = 0)"
    if isinstance(type_, types.Enum) and type_.enums:
        return "'" + type_.enums[0].replace("'", "''") + "'"
    if isinstance(type_, types.Integer):
        if name == "TINYINT":
            return "n % 100"
        return "n % 30000" if isinstance(type_, types.SmallInteger) else "n"
    if isinstance(type_, types.Numeric):
        return "n"
    if isinstance(type_, types.JSON):
        return (
            "CAST(json_build_object('n', n) AS " + ("jsonb)" if name == "JSONB" else "json)")
            if pg
            else "JSON_OBJECT('n', n)"
        )
    if isinstance(type_, types.Uuid) and pg:
        return "CAST(md5(CAST(n AS text)) AS uuid)"
    if isinstance(type_, types.String):
        as_text = "CAST(n AS text)" if pg else "CAST(n AS CHAR)"
        return f"RIGHT({as_text}, {type_.length})" if type_.length else as_text
    if isinstance(type_, types.DateTime):
        return (
            "TIMESTAMP '2000-01-01 00:00:00' + n * INTERVAL '1 second'"
            if pg
            else "TIMESTAMP'2000-01-01 00:00:00' + INTERVAL n SECOND"
        )
    if isinstance(type_, types.Date):
        return "DATE '2000-01-01' + CAST(n % 10000 AS integer)" if pg else "DATE'2000-01-01' + INTERVAL n % 10000 DAY"
    return None


# --- probes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    """One probe: stopped for waiting PROBE_TIMEOUT for a lock (blocked); and whether the statement
    it probed was still running when it had returned or been stopped (see ``_Probes.round``)."""

    blocked: bool
    overlapped: bool


@dataclass(frozen=True)
class _Round:
    """One round of probes: the SELECT's outcome, the writes' outcomes."""

    read: _Outcome
    writes: list[_Outcome]

    @property
    def write(self) -> bool:
        return any(outcome.blocked for outcome in self.writes)

    def outcomes(self) -> list[_Outcome]:
        return [self.read, *self.writes]


class _Probes:
    """Connection B's probes, one connection each, all started at once (threads), each allowed to
    wait PROBE_TIMEOUT for a lock and no longer.

    - Reads: ``SELECT * FROM table LIMIT 1``.
    - Writes: an INSERT of a new row and an UPDATE of an existing one (``_Generated.writes``), or
      ``probe_write``.
    - The wait is cut by the server: PostgreSQL ``SET lock_timeout = '150ms'`` on each probe's
      session (a wait for a table or a row lock; statement_timeout 30 s is a guard, and an error);
      MariaDB ``SET STATEMENT max_statement_time=0.15 FOR ...``: of MariaDB 10.11's settings it is
      the one that stops a wait for a metadata lock (and a row lock) after a fraction of a second:
      lock_wait_timeout and innodb_lock_wait_timeout take whole seconds (0 is no wait at all).
      A probe stopped that way (SQLSTATE 55P03; MariaDB error 1969 or 1205) is blocked; any other
      error is raised. A probe is a point query: it takes a millisecond when it need not wait.
    - Autocommit: a probe's transaction ends with it, stopped or not; it leaves no lock behind.
    """

    def __init__(self, scratch: _Scratch, table: str, generated: _Generated | None, probe_write: str | None) -> None:
        self.scratch, self.backend, self.table = scratch, scratch.backend, table
        self.generated, self.probe_write = generated, probe_write
        count = 1 + len(self.writes())
        self.connections = [scratch.connect() for _ in range(count)]
        for connection in self.connections:
            if self.backend == "postgresql":
                connection.exec_driver_sql(f"SET lock_timeout = '{int(PROBE_TIMEOUT * 1000)}ms'")
                connection.exec_driver_sql("SET statement_timeout = '30s'")
        self.threads = ThreadPoolExecutor(max_workers=count, thread_name_prefix="lock-probe")

    def round(self, still_on: Callable[[], bool] | None = None) -> _Round:
        """Run every probe at once. With ``still_on`` (a concurrent run: is A's thread still on the
        statement probed?), each probe, as soon as it has returned or been stopped, asks the server
        on its own connection whether A is still running a statement, then ``still_on()``: both
        yes, and the probe ran entirely while the statement ran (its ``overlapped``)."""
        sqls = [f"SELECT * FROM {self.table} LIMIT 1", *self.writes()]
        outcomes = list(self.threads.map(lambda connection, sql: self._probe(connection, sql, still_on),
                                         self.connections, sqls))  # fmt: skip
        return _Round(read=outcomes[0], writes=outcomes[1:])

    def writes(self) -> list[str]:
        if self.probe_write is not None:
            return [self.probe_write]
        assert self.generated is not None
        return self.generated.writes()

    def _probe(self, connection: Connection, sql: str, still_on: Callable[[], bool] | None) -> _Outcome:
        """Run ``sql``: blocked if the server stopped it for waiting PROBE_TIMEOUT for a lock."""
        if self.backend != "postgresql":
            sql = f"SET STATEMENT max_statement_time={PROBE_TIMEOUT} FOR {sql}"
        try:
            connection.exec_driver_sql(sql)
        except DBAPIError as error:
            connection.rollback()
            if not _stopped_for_waiting(self.backend, error):
                raise
            blocked = True
        else:
            blocked = False
        overlapped = still_on is None or (self.scratch.a_active(connection) and still_on())
        return _Outcome(blocked, overlapped)

    def close(self) -> None:
        self.threads.shutdown(wait=True)


def _stopped_for_waiting(backend: str, error: DBAPIError) -> bool:
    if backend == "postgresql":
        return getattr(error.orig, "sqlstate", None) == PG_LOCK_NOT_AVAILABLE
    args = getattr(error.orig, "args", ())
    return bool(args) and args[0] in MARIADB_STOPPED


# --- growth ------------------------------------------------------------------------------------


def _grows(empty: float, full: float, scan: float) -> bool:
    """The statements' time grows with the table: on the full table it is at least GROWTH_RATIO
    times the empty table's, and longer by at least GROWTH_SCAN_SHARE of a full scan of the full
    table (a ``SELECT count(*)``, timed just before), and by GROWTH_FLOOR.

    Why these: a statement that reads, validates or rewrites every row costs at least about a
    scan more on the full table; one that only changes the catalog costs the same on both, give
    or take the server's noise. The scan is timed on the same server at the same moment, so the
    threshold follows the machine's speed and load; a fixed one such as 30 ms would need a
    table of millions of rows for PostgreSQL's VALIDATE CONSTRAINT, which scans 200,000 rows in
    ~6 ms (a count(*) of them: ~5 ms). The ratio is 2, not more: on a busy machine MariaDB's
    DDL on an empty table takes ~50 ms instead of ~2 ms (its threads wait for a CPU at every
    hand-over), while building an index on 300,000 rows takes ~150 ms instead of ~100 ms, under
    3 times the empty table's; and a catalog-only ALTER was never seen to take twice its
    empty-table time there (44-68 ms against 47-56 ms). The shortest of several runs counts on
    both sides (``_marginal``)."""
    return full >= GROWTH_RATIO * empty and full - empty >= max(GROWTH_FLOOR, GROWTH_SCAN_SHARE * scan)


def _marginal(empty: float, full: float, scan: float) -> bool:
    """It looks like growth, by less than 4 times the threshold: a pause of the server could do
    that, so the full table's time is taken again (the shortest counts)."""
    return _grows(empty, full, scan) and full - empty < 4 * max(GROWTH_FLOOR, GROWTH_SCAN_SHARE * scan)


# --- runs -------------------------------------------------------------------------------------


def _run_in_autocommit(scratch: _Scratch, setup: Sequence[str], statements: Sequence[str]) -> list[float]:
    """Build the empty table, run the statements on A one by one in autocommit: each one's seconds."""
    scratch.rebuild(setup)
    return [_timed(scratch.a, sql) for sql in statements]


def _timed_in_transaction(
    scratch: _Scratch,
    statements: Sequence[str],
    during: Callable[[], None] | None = None,
    commit: Callable[[list[float]], bool] = lambda _seconds: False,
) -> tuple[list[float], bool]:
    """BEGIN on A, the statements (each timed), ``during()`` while the transaction is still open,
    then COMMIT if ``commit(seconds)`` says so, else ROLLBACK: (each statement's seconds, committed).
    The time of BEGIN, ``during()`` and COMMIT is not counted."""
    scratch.a.exec_driver_sql("BEGIN")
    try:
        seconds = [_timed(scratch.a, sql) for sql in statements]
        if during is not None:
            during()
        committed = commit(seconds)
    except BaseException:
        scratch.a.exec_driver_sql("ROLLBACK")
        raise
    scratch.a.exec_driver_sql("COMMIT" if committed else "ROLLBACK")
    return seconds, committed


def _samples_in_transaction(scratch: _Scratch, statements: Sequence[str], count: int) -> list[list[float]]:
    """PostgreSQL: ``count`` timed runs of the statements on the table as it is, each rolled back."""
    return [_timed_in_transaction(scratch, statements)[0] for _ in range(count)]


@dataclass
class _Seen:
    """What was seen while A's transaction was open (PostgreSQL, ``transaction=True``)."""

    modes: set[str]
    round: _Round
    relfilenode: object


def _measure_full_in_transaction(
    scratch: _Scratch,
    setup: Sequence[str],
    statements: Sequence[str],
    table: str,
    fill: str,
    generated: _Generated | None,
    probe_write: str | None,
    seconds_empty: list[float],
) -> Measured:
    """PostgreSQL, ``transaction=True``: on the full table, A runs the statements inside BEGIN. With
    its transaction still open (so every lock it took is still held, as in a migration), the
    monitor reads A's locks on the table from pg_locks, the probes run, and A reads the table's
    relfilenode (its own uncommitted view); then A commits. The statements' time excludes BEGIN,
    the probes and COMMIT. When that time looks like growth by a small margin (``_marginal``),
    the run ends with ROLLBACK instead and the statements are timed again on the same table (up
    to SAMPLES runs, the shortest counting; the last one commits)."""
    scratch.rebuild(setup, fill, table)
    scan, _count = scratch.scan_seconds(table)
    oid, before = scratch.table_identity(table)
    probes = _Probes(scratch, table, generated, probe_write)
    seen: list[_Seen] = []
    samples: list[list[float]] = []

    def during() -> None:
        modes = scratch.a_locks(oid)
        seen.append(_Seen(modes, probes.round(), scratch.relfilenode(scratch.a, oid)))

    def settled(seconds: list[float]) -> bool:
        shortest = min(sum(sample) for sample in [*samples, seconds])
        return len(samples) + 1 == SAMPLES or not _marginal(sum(seconds_empty), shortest, scan)

    try:
        committed = False
        while not committed:
            seconds, committed = _timed_in_transaction(scratch, statements, None if seen else during, settled)
            samples.append(seconds)
    finally:
        probes.close()
    seconds_full = min(sum(sample) for sample in samples)
    return Measured(
        blocks_reads=seen[0].round.read.blocked,
        blocks_writes=seen[0].round.write,
        rewrites=seen[0].relfilenode is not None and seen[0].relfilenode != before,
        grows_with_rows=_grows(sum(seconds_empty), seconds_full, scan),
        lock=_strongest(seen[0].modes),
        seconds_empty=sum(seconds_empty),
        seconds_full=seconds_full,
    )


def _strongest(modes: set[str]) -> str | None:
    known = [mode for mode in PG_LOCK_MODES if mode in modes]
    return known[-1] if known else (min(modes) if modes else None)


class _Runner(threading.Thread):
    """Connection A running the statements one after another, in autocommit, in a thread of its
    own: ``index`` is the statement it is on (set before it is sent), ``seconds`` and ``rowcounts``
    have one entry per statement done (the affected rows the server reported)."""

    def __init__(self, connection: Connection, statements: Sequence[str]) -> None:
        super().__init__(name="lock-probe-statements", daemon=True)
        self.connection, self.statements = connection, list(statements)
        self.index = -1
        self.seconds: list[float] = []
        self.rowcounts: list[int] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for index, sql in enumerate(self.statements):
                self.index = index
                started = time.perf_counter()
                result = self.connection.exec_driver_sql(sql)
                self.seconds.append(time.perf_counter() - started)
                self.rowcounts.append(result.rowcount)
            self.index = len(self.statements)
        except BaseException as error:  # raised again by the caller, in its own thread
            self.error = error

    def on(self, index: int) -> bool:
        """A is on statement ``index`` and, as far as this thread knows, not done with it."""
        return self.index == index and len(self.seconds) == index


def _measure_full_concurrently(
    scratch: _Scratch,
    setup: Sequence[str],
    statements: Sequence[str],
    table: str,
    fill: str,
    generated: _Generated | None,
    probe_write: str | None,
    seconds_empty: list[float],
) -> Measured:
    """``transaction=False``, and MariaDB: A runs the statements on the full table in a thread; the
    probes run while a statement is still running.

    How the probes are known to run while the statement runs: the monitor looks at A every
    POLL seconds (``_Scratch.a_state``); once A's statement is at its work on the table (PostgreSQL:
    active and holding a lock on it; MariaDB: a processlist state such as "copy to tmp table" or
    "altering table"), a round of probes starts. Each probe, the moment it has returned or been
    stopped, asks the server on its own connection whether A is still running a statement, and
    A's thread whether it is still on the same one (it was before): both yes, and the probe ran
    entirely while the statement ran (``_Probes.round``). So a probe that returned was not
    blocked only if the statement was still running after it had returned: a probe that waited
    for the statement and got through once it ended does not pass for unblocked. A probe stopped
    for waiting PROBE_TIMEOUT is blocked, whenever the statement ended. The table's size makes
    such runs the rule (DEFAULT_ROWS: a MariaDB COPY runs ~0.25 s, past a probe's 0.15 s wait; an
    INPLACE index build ~0.1 s, a PostgreSQL CREATE INDEX CONCURRENTLY ~0.05 s, past the
    millisecond of a probe that need not wait). A statement that grows with the table but ended
    before a probe that was not stopped gives no verdict (``Inconclusive``: ``measure`` runs it
    again on a table as many times bigger as the statement's time says it takes to outlast a
    probe's wait, 2 to 8).

    A statement that finishes instantly (a MariaDB ALGORITHM=INSTANT ALTER: ~3 ms, in phases
    that all hold an exclusive metadata lock) cannot be probed while it runs. It counts as not
    blocking when it does not grow with the table and ran, on the full table, for less than
    PROBE_TIMEOUT: no probe can wait longer than it runs, and it runs as briefly on any table.
    Whatever was seen, one round of probes also runs right after the last statement; one of them
    stopped there in AFTER_ROUNDS rounds running would mean a lock held past the statements,
    which raises.

    The statements' time on the full table is this run's (probes and all); when it looks like
    growth by a small margin (``_marginal``), the table is built again and the statements timed
    again without probes, up to SAMPLES runs, the shortest counting."""
    backend = scratch.backend
    scratch.rebuild(setup, fill, table)
    scan, count = scratch.scan_seconds(table)
    oid, before = scratch.table_identity(table)
    probes = _Probes(scratch, table, generated, probe_write)
    modes: set[str] = set()
    rounds: dict[int, _Round] = {}
    runner = _Runner(scratch.a, statements)
    try:
        runner.start()
        while runner.is_alive():
            index = runner.index
            if 0 <= index < len(statements) and index not in rounds and runner.on(index):
                _active, at_work, held = scratch.a_state(oid)
                modes |= held
                if at_work and runner.on(index):
                    rounds[index] = probes.round(partial(runner.on, index))
                    modes |= scratch.a_state(oid)[2]
                    continue
            time.sleep(POLL)
        runner.join()
        if runner.error is not None:
            raise runner.error
        after = probes.round()
        for _ in range(AFTER_ROUNDS - 1):  # one stopped by the machine's load, not a lock, passes next time
            if not (after.read.blocked or after.write):
                break
            time.sleep(PROBE_TIMEOUT)
            after = probes.round()
    finally:
        runner.join()
        probes.close()
    if after.read.blocked or after.write:
        raise RuntimeError(f"a probe of {table} was still blocked after the statements had ended")
    after_id, _ = scratch.table_identity(table) if backend != "postgresql" else (None, None)
    relfilenode = scratch.relfilenode(scratch.monitor, oid) if backend == "postgresql" else None

    blocks_reads = blocks_writes = False
    for index in range(len(statements)):
        instant = runner.seconds[index] < PROBE_TIMEOUT and not _grows(
            seconds_empty[index], runner.seconds[index], scan
        )
        round_ = rounds.get(index)
        # To outlast a probe that waits: PROBE_TIMEOUT and 0.1 s more (for the monitor's first looks).
        factor = min(8, max(2, math.ceil((PROBE_TIMEOUT + 0.1) / max(runner.seconds[index], 0.001))))
        if round_ is None and not instant:
            raise Inconclusive(f"statement {index + 1} ended before it could be probed: {statements[index]}", factor)
        if round_ is None:
            continue
        if not instant and any(not outcome.blocked and not outcome.overlapped for outcome in round_.outcomes()):
            raise Inconclusive(f"statement {index + 1} ended before its probes did: {statements[index]}", factor)
        blocks_reads |= round_.read.blocked
        blocks_writes |= round_.write

    samples = [runner.seconds]
    while len(samples) < SAMPLES and _marginal(sum(seconds_empty), min(sum(s) for s in samples), scan):
        scratch.rebuild(setup, fill, table)
        samples.append([_timed(scratch.a, sql) for sql in statements])
    seconds_full = min(sum(sample) for sample in samples)

    if backend == "postgresql":
        rewrites = relfilenode is not None and relfilenode != before
    else:
        copied = [rowcount for sql, rowcount in zip(statements, runner.rowcounts, strict=True) if _is_ddl(sql)]
        rewrites = (after_id is not None and after_id != oid) or (count > 0 and count in copied)
    return Measured(
        blocks_reads=blocks_reads,
        blocks_writes=blocks_writes,
        rewrites=rewrites,
        grows_with_rows=_grows(sum(seconds_empty), seconds_full, scan),
        lock=_strongest(modes) if backend == "postgresql" else None,
        seconds_empty=sum(seconds_empty),
        seconds_full=seconds_full,
    )


def _is_ddl(sql: str) -> bool:
    """An ALTER, CREATE, DROP or OPTIMIZE: a statement whose affected rows are rows copied."""
    return sql.lstrip().upper().startswith(("ALTER", "CREATE", "DROP", "OPTIMIZE"))


def _timed(connection: Connection, sql: str) -> float:
    started = time.perf_counter()
    connection.exec_driver_sql(sql)
    return time.perf_counter() - started
