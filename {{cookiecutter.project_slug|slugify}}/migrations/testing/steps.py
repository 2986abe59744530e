"""One revision's step of the stairway (stairway.py), and what it says when it is faulty."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alembic.script import Script
from alembic.util import CommandError

if TYPE_CHECKING:
    from migrations.testing.migrator import Captured

# The hint for a downgrade that does nothing, or raises NotImplementedError, on purpose.
MARK_IT = (
    'If {}, say so in the revision: irreversible = "why" (see migrations/irreversible.py); then '
    "alembic downgrade stops before running anything, and this suite upgrades it only."
)


@dataclass
class Step:
    """One revision of the stairway. ``before`` and ``after_downgrade`` are equal when the
    downgrade restored the schema (see ``Migrator.compare``); the row counts are every
    table's. ``skipped`` says why a revision was only upgraded; ``error`` what failed, and
    ``downgrade_did_nothing`` that the downgrade left the schema as the upgrade made it."""

    revision: Script
    downgrade_target: str
    before: Any = None
    after_downgrade: Any = None
    rows_before: dict[str, int] = field(default_factory=dict)
    rows_after_downgrade: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None
    error: str | None = None
    downgrade_did_nothing: bool = False
    # the schema and row counts its upgrade left, for Migrator.back_at()
    at_revision: Captured | None = field(default=None, repr=False, compare=False)
    # the capture before its upgrade, when the walk tracked its changes (changes.py): a fault
    # found so is confirmed against a new database (stairway.walk())
    tracked_before: Captured | None = field(default=None, repr=False, compare=False)
    rows_at_revision: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __str__(self) -> str:
        return f"{self.revision.revision} ({self.revision.doc})"

    @property
    def clean(self) -> bool:
        """Nothing failed, and the downgrade gave back the schema and the row counts as they were."""
        if self.error is not None:
            return False
        return self.after_downgrade == self.before and self.rows_after_downgrade == self.rows_before

    def fault(self) -> str | None:
        """What is wrong with this revision, in words, or None."""
        if self.skipped is not None or self.clean:
            return None
        if self.error is not None and self.error.startswith("downgrading it failed: NotImplementedError"):
            return f"{self}: {self.error} {MARK_IT.format('it refuses to be undone')}"
        if self.error is not None:
            return f"{self}: {self.error}"
        if self.downgrade_did_nothing:
            did_nothing = "its downgrade did nothing, though its upgrade changed the schema."
            return f"{self}: {did_nothing} {MARK_IT.format('it cannot be undone')}"
        lines = differences(self.before, self.after_downgrade)
        if self.rows_after_downgrade != self.rows_before:
            changed = sorted(set(self.rows_before) | set(self.rows_after_downgrade))
            lines += [
                f"rows in {table}: {self.rows_before.get(table)} -> {self.rows_after_downgrade.get(table)}"
                for table in changed
                if self.rows_before.get(table) != self.rows_after_downgrade.get(table)
            ]
        # what the upgrade and the downgrade did together (an upgrade can lose something too)
        return f"{self}: upgrading it and downgrading it to {self.downgrade_target} changed:\n  " + "\n  ".join(lines)


class NotDowngraded(UserWarning):
    """A revision the stairway upgraded without downgrading it (irreversible, or skipped)."""


UPGRADES_FROM_BASE = (
    " (from a database at {parents}, in a run of its own, as on a database the revision before it left; an "
    "empty database upgraded from base in one run gets past it, and the walk went on from there)"
)


def describe_error(error: BaseException) -> str:
    """The first line of an error, as the alembic command would print it; of env.py's one
    line (migrations/failures.py), the error it was raised from: what the walk's own commits
    left applied is the walk's business, not the failed run's."""
    if isinstance(error, CommandError) and error.__cause__ is not None:
        error = error.__cause__
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def undo_target(revision: Script) -> str:
    """Where ``Migrator.undo()`` takes the database, in words for a failure message."""
    if revision.is_merge_point:
        return f"its parents {', '.join(revision.down_revision)}"
    parent = revision.down_revision
    return ", ".join(parent) if isinstance(parent, (tuple, list)) else parent or "base"


def differences(before: Any, after: Any, only_after: str = "left behind", only_before: str = "missing") -> list[str]:
    """What changed between two snapshots (or two catalogs), one line per table part or
    object, with the items of it that differ, for a failure message; a table in one of them
    only is said to be ``only_after`` / ``only_before``."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return ["sqlite_master changed"] if before != after else []

    def changed(old: Any, new: Any) -> str:
        """``old -> new``: of two lists or two dicts, only the items that differ."""
        if isinstance(old, list) and isinstance(new, list):
            old, new = [item for item in old if item not in new], [item for item in new if item not in old]
        elif isinstance(old, dict) and isinstance(new, dict):
            keys = [key for key in {**old, **new} if old.get(key) != new.get(key)]
            old, new = ({key: part[key] for key in keys if key in part} for part in (old, new))
        return f"{old!r} -> {new!r}"

    lines = []
    for table in sorted(set(before["tables"]) | set(after["tables"])):
        old, new = before["tables"].get(table), after["tables"].get(table)
        if old is None:
            lines.append(f"table {table}: {only_after}")
        elif new is None:
            lines.append(f"table {table}: {only_before}")
        else:
            parts = [part for part in old if old[part] != new.get(part)]
            lines.extend(f"table {table} {part}: {changed(old[part], new.get(part))}" for part in parts)
    for key in sorted((set(before) | set(after)) - {"tables"}):
        if before.get(key) != after.get(key):
            lines.append(f"{key}: {changed(before.get(key), after.get(key))}")
    return lines
