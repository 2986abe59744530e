"""What a failed run says: which revision failed, why, and where the database was left.

Alembic logs "Running upgrade A -> B" and then shows the database error as a traceback
that names no revision. env.py turns that into one line that does::

    FAILED: revision f41ed00000000 (20261122_f41ed00000000_add_things.py) failed:
    relation "no_such_table" does not exist. Nothing of this run was applied.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType

from alembic.util import CommandError
from sqlalchemy import URL
from sqlalchemy.exc import DBAPIError, OperationalError


def is_revision_module(module: dict) -> bool:
    """Whether these module globals are a revision file's."""
    return "revision" in module and "down_revision" in module and "__file__" in module


def failing_revision(traceback: TracebackType | None) -> tuple[str, str] | None:
    """The innermost revision module in the traceback: (revision id, file)."""
    found = None
    while traceback is not None:
        if is_revision_module(traceback.tb_frame.f_globals):
            found = (str(traceback.tb_frame.f_globals["revision"]), traceback.tb_frame.f_globals["__file__"])
        traceback = traceback.tb_next
    return found


def revision_that_raised(error: BaseException) -> tuple[str, str] | None:
    """failing_revision() of an error, or of the one env.py's one-line CommandError was raised from."""
    found = failing_revision(error.__traceback__)
    if found is None and error.__context__ is not None:
        found = failing_revision(error.__context__.__traceback__)
    return found


def describe(error: BaseException) -> str:
    """The first line of what the database said (SQLAlchemy's wrapper adds SQL and links)."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def migration_failed(
    error: Exception,
    one_transaction: bool,
    what_stays: str | None = None,
    callers_transaction: bool = False,
) -> CommandError:
    """Call from an ``except`` block: the traceback tells which revision was running.
    ``what_stays``: the run was one transaction but a revision's autocommit_block()
    committed part of it: what stays applied, in words (migrations/autocommit.py).
    ``callers_transaction``: the run was inside a transaction of the caller's, which is
    left to it. A CommandError keeps its class (callers may tell them apart)."""
    found = failing_revision(sys.exc_info()[2])
    where = f"revision {found[0]} ({Path(found[1]).name})" if found else "a migration"
    kind = type(error) if isinstance(error, CommandError) else CommandError
    if callers_transaction and one_transaction:
        left = "What this run did is in the caller's transaction, which it commits or rolls back."
    elif callers_transaction:
        left = "DDL it ran committed as it went (no transaction held it); the rest is the caller's."
    elif what_stays is not None:
        left = what_stays
    elif one_transaction:
        left = "Nothing of this run was applied."
    else:
        left = (
            "The migrations before it are applied and recorded in the version table; "
            "DDL it ran before failing may remain (this database cannot roll DDL back)."
        )
    if _waited_too_long(error):
        left += (
            " A query on the table held it longer than ddl_lock_timeout allows (see migrations/lock.py):"
            " run it again when the table is quieter, or raise ddl_lock_timeout."
        )
    return kind(f"{where} failed: {describe(error)}. {left}")


def error_codes(error: BaseException) -> set:
    """What the driver says went wrong, as codes: the SQLSTATE (psycopg) and the error number
    (PyMySQL), whichever it gives."""
    original = getattr(error, "orig", None)
    return {getattr(original, "sqlstate", None), *getattr(original, "args", ())[:1]} - {None}


def _waited_too_long(error: Exception) -> bool:
    """PostgreSQL's lock_timeout (55P03) or MariaDB's lock_wait_timeout (1205) ran out."""
    return bool(error_codes(error) & {"55P03", 1205})


def cannot_connect(error: OperationalError, url: URL) -> CommandError:
    return CommandError(f"cannot connect to {url.render_as_string(hide_password=True)}: {describe(error)}")
