"""Which tables a revision's step changed, so that the stairway (stairway.py) reads again only
their part of the schema, not the whole of it: a step's check costs what the step changed, and
a walk grows with the length of the history, not with its square.

Every statement a step runs on the walk's connection is seen (a listener on the Connection):

- one that an Alembic operation runs (through its ``impl._exec``) and whose construct names
  its table (CREATE/DROP/ALTER TABLE, an index, a constraint, a comment) changes that table
  (a renamed table: both names);
- anything else changes what cannot be read: an ``op.execute()`` of SQL text, a statement run
  on ``op.get_bind()`` directly, an enum type made with its table, the reflection of a
  batch operation, a sequence; and so does a connection the step takes from any of this
  process's pools (``create_engine(url).connect()``, ``op.get_bind().engine.connect()``).
  The next capture reads the whole schema, as before.

Rows: an INSERT, UPDATE or DELETE (bulk_insert, a batch copy) may fire a trigger or cascade to
other tables: every table's rows are counted again after it; after DDL alone, only the tables
it named. What a second connection does is not seen here: the walk compares what it tracked
with the whole schema and every row count at the end of each line of revisions, and at each
faulty one, and walks again with whole-schema captures when they differ (stairway.py). A
change through a connection SQLAlchemy did not make (the driver's own, another process) is
found so when it is still there then; one undone before then may hide the fault it made.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic.ddl.base import AlterTable, ColumnName, RenameTable
from sqlalchemy import Connection, Pool, event
from sqlalchemy.sql.ddl import (
    AddConstraint,
    CreateIndex,
    CreateTable,
    DropColumnComment,
    DropConstraint,
    DropIndex,
    DropTable,
    DropTableComment,
    SetColumnComment,
    SetTableComment,
)
from sqlalchemy.sql.dml import Delete, Insert, Update

from migrations.testing.catalog import version_tables

TABLE_DDL = (CreateTable, DropTable, SetTableComment, DropTableComment)
ON_A_TABLE = (CreateIndex, DropIndex, AddConstraint, DropConstraint)
ON_A_COLUMN = (SetColumnComment, DropColumnComment)
ROWS = (Insert, Update, Delete)


class Changes:
    """What the steps run since the last capture changed: ``tables``, unless ``everything``
    (the whole schema is to be read); ``rows``: every table's rows are to be counted again."""

    def __init__(self) -> None:
        self.tables: set[str] = set()
        self.everything = False
        self.rows = False
        self.renamed = False  # a table or a column: SQLite rewrites the tables, views and triggers naming it
        self.unread = False  # since mark(): anything else than DDL on named tables (rows, SQL text...)
        self.constructs: list[Any] = []  # the operations' constructs being run (``running()``), innermost last
        # since mark(record=True): (construct, statement, parameters) of each statement the
        # operations ran (Alembic's version table aside), for the stairway to run again; they
        # are all that ran while ``unread`` stays False
        self.statements: list[tuple[Any, str, Any]] | None = None

    def mark(self, record: bool = False) -> None:
        """From here, ``unread`` tells whether the steps run since did more than DDL on named
        tables; with ``record``, their statements are recorded too (``statements``)."""
        self.unread = False
        self.statements = [] if record else None

    @contextmanager
    def running(self, construct: Any) -> Iterator[None]:
        """While an operation's construct runs: what it changes is noted, and the statements
        run meanwhile are its own."""
        self.note(construct)
        self.constructs.append(construct)
        try:
            yield
        finally:
            self.constructs.pop()

    def unknown(self, schema: bool = True) -> None:
        """What was run changed rows (and with ``schema``, the schema) where no name says which."""
        self.everything = self.everything or schema
        self.rows = self.unread = True

    def note(self, construct: Any) -> None:
        """What an operation's construct changes."""
        names = named_tables(construct)
        if isinstance(construct, (RenameTable, ColumnName)):
            self.renamed = True
        if names is None:
            self.unknown()
        elif isinstance(construct, ROWS):
            if not names <= version_tables():  # Alembic's own update of its version table aside
                self.tables |= names
                self.unknown(schema=False)
        else:
            self.tables |= names

    def statement(self, statement: str, parameters: Any, many: bool) -> None:
        """A statement run on the connection: outside an operation, what it changes is unknown."""
        if not self.constructs:  # outside any operation
            self.unknown()
        elif self.statements is not None:
            construct = self.constructs[-1]
            if isinstance(construct, ROWS) and (named_tables(construct) or set()) <= version_tables():
                return  # Alembic's own update of its version table: a step records it
            if many:
                self.unknown(schema=False)  # not DDL
            self.statements.append((construct, statement, parameters))


def named_tables(construct: Any) -> set[str] | None:
    """The tables this construct changes (a name as the database spells it, and as written),
    or None when it cannot be read."""
    if isinstance(construct, RenameTable):
        names = [construct.table_name, construct.new_table_name]
    elif isinstance(construct, AlterTable):
        names = [construct.table_name]
    elif isinstance(construct, TABLE_DDL):
        names = [construct.element.name]
    elif isinstance(construct, ON_A_TABLE):
        table = construct.element.table
        names = [getattr(table, "name", None)]
    elif isinstance(construct, ON_A_COLUMN):
        names = [getattr(construct.element.table, "name", None)]
    elif isinstance(construct, ROWS):
        names = [getattr(construct.table, "name", None)]
    else:
        return None
    if not all(isinstance(name, str) and name for name in names):
        return None  # e.g. op.drop_index() without its table_name
    return {variant for name in names for variant in (name, name.lower())}


@contextmanager
def watched(connection: Connection, context: Any, changes: Any) -> Iterator[None]:
    """While it lasts, each statement on ``connection`` and each construct an operation runs
    through ``context.impl`` is told to ``changes()`` (a callable giving the Changes to tell,
    or None when nothing is tracked just then)."""
    impl = context.impl
    run = impl._exec

    def _exec(construct: Any, *args: Any, **kwargs: Any) -> Any:
        tracked = changes()
        if tracked is None:
            return run(construct, *args, **kwargs)
        with tracked.running(construct):
            return run(construct, *args, **kwargs)

    def before_cursor_execute(_connection, _cursor, statement, parameters, _context, many) -> None:
        tracked = changes()
        if tracked is not None:
            tracked.statement(statement, parameters, many)

    walking = threading.get_ident()

    def checkout(*_: Any) -> None:  # a second connection, in the walk's thread: the revision's
        tracked = changes()
        if tracked is not None and threading.get_ident() == walking:
            tracked.unknown()

    impl._exec = _exec
    event.listen(connection, "before_cursor_execute", before_cursor_execute)
    event.listen(Pool, "checkout", checkout)
    try:
        yield
    finally:
        event.remove(Pool, "checkout", checkout)
        event.remove(connection, "before_cursor_execute", before_cursor_execute)
        impl.__dict__.pop("_exec", None)
