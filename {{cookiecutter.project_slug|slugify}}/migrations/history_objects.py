"""The views, functions, procedures and triggers the history makes (recipe 4 in revisions).

``create_all()`` knows nothing of a view that a revision makes with ``op.create_view`` (the
cookbook's own way): create_db.py alone would build a database without it, unlike
``alembic upgrade head``. Here the history's replaceable-object operations are replayed
without running anything else: each revision whose code calls one (``op.create_view``,
``op.replace_sp``, ``op.drop_trigger``, ...) runs its ``upgrade()``, data steps off, against
operations that record the objects and ignore every other operation. What is alive at head
is what create_db.py builds after the declared objects (a declared object of the same
name wins: the models say what it is now).

Not seen: objects made with ``op.execute("CREATE VIEW ...")`` (use ``op.create_view``, or
declare them in the models). A revision whose ``upgrade()`` needs a live database
(``op.get_bind()``) cannot be replayed: it is named in ``skipped``, and its objects are
left out (the migration suite's create_db ≡ upgrade head then says what is missing).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import CodeType, FunctionType
from typing import Any

from alembic.config import Config
from alembic.operations import Operations
from alembic.operations.ops import CreateTableOp
from alembic.runtime.environment import EnvironmentContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Dialect

from migrations.failures import describe
from migrations.replaceable import OPERATION_NAMES, Kind, ReplaceableObject, ReplaceOp, ReversibleOp, base_name

OPERATIONS = frozenset(
    f"{verb}_{name}" for names in OPERATION_NAMES.values() for name in names for verb in ("create", "replace", "drop")
)


@dataclass
class HistoryObjects:
    """What the history's revisions leave alive at head, in the order they were (last) made."""

    alive: dict[tuple[str, str], tuple[Kind, ReplaceableObject]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # "revision: why", for a warning

    def objects(self) -> list[tuple[Kind, ReplaceableObject]]:
        return list(self.alive.values())


def history_objects(config: Config, script: ScriptDirectory, dialect: Dialect) -> HistoryObjects:
    """Replay the replaceable-object operations of the history, base to head."""
    found = HistoryObjects()
    revisions = reversed(list(script.walk_revisions("base", "heads")))  # base first
    calling = [revision for revision in revisions if calls_replaceable_operations(revision)]
    if not calling:
        return found
    environment = EnvironmentContext(config, script, as_sql=True, fn=lambda _heads, _context: [])
    with environment:
        environment.configure(dialect_name=dialect.name, output_buffer=io.StringIO(), literal_binds=True)
        recorder = recording_operations(environment.get_context(), found)
        recorder._install_proxy()  # what Operations.context() does, with these Operations
        try:
            for revision in calling:
                replay(revision, found)
        finally:
            recorder._remove_proxy()
    return found


def replay(revision: Script, found: HistoryObjects) -> None:
    before = dict(found.alive)
    try:
        revision.module.upgrade()
    except Exception as error:  # noqa: BLE001  a revision's own code: it needs a live database
        found.alive = before
        found.skipped.append(f"{revision.revision} ({type(error).__name__}: {describe(error)})")


def calls_replaceable_operations(revision: Script) -> bool:
    """Whether any function of the revision's module names op.create_view & co."""
    codes = [value.__code__ for value in vars(revision.module).values() if isinstance(value, FunctionType)]
    while codes:
        code = codes.pop()
        if OPERATIONS.intersection(code.co_names):
            return True
        codes.extend(const for const in code.co_consts if isinstance(const, CodeType))
    return False


def recording_operations(migration_context, found: HistoryObjects) -> Operations:
    """Operations (``op``) that record replaceable objects and run nothing else. (Alembic's
    ``op`` proxies Operations itself, not a subclass: the instance's own methods are set.)"""
    operations = Operations(migration_context)

    def invoke(operation: Any) -> Any:
        alive = found.alive
        if isinstance(operation, ReversibleOp):
            key = (operation.kind.label, base_name(operation.target.name))
            alive.pop(key, None)
            if operation.creates:
                alive[key] = (operation.kind, operation.target)
        elif isinstance(operation, ReplaceOp):
            alive.pop((operation.kind.label, base_name(operation.old.name)), None)
            alive[(operation.kind.label, base_name(operation.new.name))] = (operation.kind, operation.new)
        elif isinstance(operation, CreateTableOp):  # a revision may use the Table it returns
            return operation.to_table(migration_context)
        return None

    @contextmanager
    def batch_alter_table(*_args: Any, **_kwargs: Any) -> Iterator[Any]:
        yield _Ignored()

    operations.invoke = invoke
    operations.batch_alter_table = batch_alter_table
    return operations


class _Ignored:
    """A batch_alter_table() that does nothing (its operations are never replaceable ones)."""

    def __getattr__(self, _name: str) -> Any:
        return lambda *_args, **_kwargs: None
