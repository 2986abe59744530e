"""The stairway: every revision upgraded, downgraded, compared and upgraded again (or, when a
capture reads all it did, on PostgreSQL rolled back to, on SQLite its statements run again),
in-process.

- ``Migrator`` (migrator.py): Alembic's upgrade, downgrade and check on one Connection,
  through env.py, with one ScriptDirectory loaded once, and cheap schema captures;
- ``Step`` (steps.py): one revision's step, and what it says when it is faulty;
- ``walk()``: the whole history, going on past a faulty revision, so one walk names every
  fault: on the same database when it can be brought back to the state that revision's
  upgrade left (see ``Migrator.back_at``), else on a new one; ``stairway()`` walks one
  database up to the first fault.

A line of revisions is walked in one run of env.py: Alembic applies the MigrationSteps the
run's ``fn`` yields, and the schema is captured between them. Alembic has no public name
for a revision's own step or for the steps of ``upgrade X`` (``_upgrade_revs``); the
template's proofs fail loudly should those change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from functools import partial
from itertools import pairwise

from alembic.runtime.migration import MigrationStep, RevisionStep
from alembic.script import Script, ScriptDirectory
from alembic.util import to_tuple

from migrations.conditional import has_data_steps
from migrations.failures import revision_that_raised
from migrations.irreversible import irreversible_reason
from migrations.testing.changes import watched
from migrations.testing.migrator import (
    COUNTS_PER_QUERY,
    Captured,
    Migrator,
    load_script,
    revisions_base_to_head,
    row_counts,
)
from migrations.testing.steps import (
    MARK_IT,
    UPGRADES_FROM_BASE,
    NotDowngraded,
    Step,
    describe_error,
    differences,
    undo_target,
)

__all__ = [  # what tests/test_migrations.py and the template's proofs import from here
    "COUNTS_PER_QUERY",
    "MARK_IT",
    "Captured",
    "Migrator",
    "NotDowngraded",
    "Step",
    "describe_error",
    "differences",
    "has_data_steps",
    "load_script",
    "revisions_base_to_head",
    "row_counts",
    "stairway",
    "stairway_from",
    "undo_target",
    "walk",
]


def walk(
    script: ScriptDirectory,
    fresh: Callable[[], AbstractContextManager[Migrator]],
    *,
    start_after: str | None = None,
    skip: dict[str, str] | None = None,
    data: bool = False,
    progress: Callable[[int, int, Script], None] | None = None,
    probe: Callable[[], AbstractContextManager[Migrator]] | None = None,
) -> Iterator[Step]:
    """The stairway over the whole history, every faulty revision found in one walk.

    ``fresh()`` gives a Migrator on a new, empty database. The walk goes on past a faulty
    revision, so one walk names every fault: on the same database when ``Migrator.back_at()``
    finds it as that revision's upgrade left it, else on a new database brought straight to
    that revision. An upgrade that fails from where the walk is (its parent, in a run of its
    own) is tried on a new database brought to it from base in one run, as ``alembic upgrade
    head`` on an empty database does: if that works, the walk goes on from there (the fault
    stays, and says so), else it ends there, as the revisions after it need it.
    Revisions up to ``start_after`` (with the data steps on: up to the one before the first
    that has data steps, see ``has_data_steps``), those in ``skip`` and irreversible ones
    (migrations/irreversible.py) are upgraded only, and yielded as skipped.
    ``progress(n, total, revision)`` is told each revision as its step begins. ``probe()``
    gives a Migrator on a new database to confirm a fault on (default: ``fresh()``).
    """
    revisions = revisions_base_to_head(script)
    first = 0
    if start_after is not None:
        found = [i for i, revision in enumerate(revisions) if revision.revision == start_after]
        if not found:
            raise ValueError(f"start_after={start_after!r} is not a revision of this history")
        first = found[0] + 1
    if data:
        first = max(first, next((i for i, rev in enumerate(revisions) if has_data_steps(rev)), len(revisions)))
    reasons = {**(skip or {})}
    for revision in revisions:
        reason = irreversible_reason(revision)
        if reason and revision.revision not in reasons:
            reasons[revision.revision] = f"irreversible: {reason}"
    why = "before start_after" if not data else "no data steps here or before: the same run as without data steps"
    yield from (Step(revision, undo_target(revision), skipped=why) for revision in revisions[:first])
    position = {revision.revision: i for i, revision in enumerate(revisions)}

    def begins(revision: Script) -> None:
        if progress is not None:
            progress(position[revision.revision] + 1, len(revisions), revision)

    probes = ExitStack()  # one database, kept for the walk, that every fault is confirmed on
    held: list[Migrator] = []

    def confirm(step: Step) -> None:
        """A fault found while the walk tracked the steps' changes (changes.py): UntrackedChange
        unless the probe's database, upgraded to the revisions before it, has the schema and
        the row counts the walk had there (a change the walk did not see, undone before the
        end of the line, could have shown as this revision's). The probe goes from one fault
        to the next: upgrading it costs one more pass over the history in all."""
        try:
            if not held:
                held.append(probes.enter_context((probe or fresh)()))
                held[0].tracking = False
            upgrade_prefix(held[0], revisions[: position[step.revision.revision]])
            same = held[0].matches(step.tracked_before, step.rows_before)
        except Exception:  # noqa: BLE001  not built so: the line again, every capture whole
            held.clear()
            same = False
        if not same:
            raise UntrackedChange(step)

    pending: Step | None = None  # an upgrade that failed on the walk's database, told once a new one tried it
    tracking = True  # False once something changed the database where the walk did not track it
    with probes:
        while first < len(revisions) or pending is not None:
            with fresh() as migrator:
                migrator.tracking = tracking
                try:
                    upgrade_prefix(migrator, revisions[:first])
                except Exception as error:  # on a new database: what was found so far is kept
                    failed = prefix_failed(migrator, revisions[:first], error)
                    if pending is not None:
                        yield pending
                    if pending is None or failed.revision.revision != pending.revision.revision:
                        yield failed
                    return  # the revisions after it need it
                if pending is not None:  # it upgrades from base in one run: said, and the walk goes on
                    parents = ", ".join(_parents(pending.revision)) or "base"
                    pending.error = f"{pending.error}{UPGRADES_FROM_BASE.format(parents=parents)}"
                    yield pending
                    pending = None
                while first < len(revisions):
                    faulty = None
                    try:
                        for step in stairway_from(migrator, revisions[first:], reasons, begins, confirm):
                            first = position[step.revision.revision] + 1  # each revision once, none passed over
                            if not step.clean and step.skipped is None:
                                faulty = step
                                break
                            yield step
                    except UntrackedChange:  # this line again, on a new database, every capture whole
                        tracking = False
                        break
                    if faulty is None:
                        break
                    if faulty.error is not None and faulty.error.startswith("upgrading it failed"):
                        pending = faulty  # tried next on a new database, brought to it from base in one run
                        break
                    yield faulty
                    if not migrator.back_at(faulty):
                        break  # the next revisions on a new database


def prefix_failed(migrator: Migrator, prefix: list[Script], error: Exception) -> Step:
    """The Step of the revision whose upgrade failed while a new database was brought to the
    end of ``prefix`` (it upgraded before, on another database, or it was only to be upgraded:
    a skipped or irreversible one)."""
    found = revision_that_raised(error)
    by_id = {revision.revision: revision for revision in prefix}
    revision = by_id.get(found[0]) if found else None
    if revision is None:  # not raised in a revision's own code: the first one not applied
        try:
            heads = migrator.current()
            applied = {rev.revision for rev in migrator.script.iterate_revisions(heads, "base")} if heads else set()
        except Exception:  # noqa: BLE001  the database cannot say: the first revision, then
            applied = set()
        revision = next((rev for rev in prefix if rev.revision not in applied), prefix[-1])
    message = f"upgrading it failed (bringing a new database to {prefix[-1].revision}): {describe_error(error)}"
    return Step(revision, undo_target(revision), error=message)


def upgrade_prefix(migrator: Migrator, prefix: list[Script]) -> None:
    """Bring an empty database to exactly these revisions (and so their ancestors)."""
    parents = {parent for revision in prefix for parent in to_tuple(revision.down_revision, default=())}
    parents |= {dependency for revision in prefix for dependency in to_tuple(revision.dependencies, default=())}
    for revision in prefix:
        if revision.revision not in parents:
            migrator.upgrade(revision.revision)


def stairway(migrator: Migrator) -> Iterator[Step]:
    """The stairway on the migrator's database, which must be empty, up to the first faulty
    revision (``walk()`` goes on past it on new databases). With the data steps on
    (``migrator.data``), the revisions before the first that has data steps are only
    upgraded, and yielded as skipped; irreversible ones too. UntrackedChange when something
    changed the database where the walk's connection did not (``walk()`` walks on)."""
    current = migrator.current()
    if current:
        raise ValueError(f"the stairway starts from an empty database; this one is at {', '.join(current)}")
    revisions = revisions_base_to_head(migrator.script)
    first = 0
    if migrator.data:
        first = next((i for i, revision in enumerate(revisions) if has_data_steps(revision)), len(revisions))
        upgrade_prefix(migrator, revisions[:first])
        why = "no data steps here or before: the same run as without data steps"
        yield from (Step(revision, undo_target(revision), skipped=why) for revision in revisions[:first])
    skip = {rev.revision: f"irreversible: {irreversible_reason(rev)}" for rev in revisions if irreversible_reason(rev)}
    yield from stairway_from(migrator, revisions[first:], skip)


def stairway_from(
    migrator: Migrator,
    revisions: list[Script],
    skip: dict[str, str],
    begins: Callable[[Script], None] = lambda _revision: None,
    confirm: Callable[[Step], None] | None = None,
) -> Iterator[Step]:
    """Each of ``revisions`` (base to head; the database is at their parents): upgrade it,
    downgrade it, capture and compare, upgrade it again. Stops after the first Step that is
    not clean. A revision in ``skip`` is only upgraded, and yielded with the reason."""
    if not revisions:
        return
    # A line, from where the database is, whose revisions depend on nothing but their parents:
    # each revision's own steps are what Alembic's walk would find, in one run of env.py.
    linear = all(revision.down_revision == parent.revision for parent, revision in pairwise(revisions))
    linear = linear and not any(revision.dependencies for revision in revisions)
    linear = linear and migrator.current() == _parents(revisions[0])
    if linear:
        yield from _walk_line(migrator, revisions, skip, begins, confirm)
        return
    for revision in revisions:  # branches: each revision down and up again on its own
        begins(revision)
        if revision.revision in skip:
            migrator.upgrade(revision.revision)
            yield Step(revision, undo_target(revision), skipped=skip[revision.revision])
            continue
        before = migrator.capture()
        step = Step(revision, undo_target(revision), rows_before=migrator.counts(before))
        at_revision: Captured | None = None
        for phase, action in (
            ("upgrading it", lambda revision=revision: migrator.upgrade(revision.revision)),
            ("capture", None),
            ("downgrading it", lambda revision=revision: migrator.undo(revision)),
            ("record", None),
            ("upgrading it again after its downgrade", lambda revision=revision: migrator.upgrade(revision.revision)),
        ):
            if phase == "capture":
                at_revision = migrator.capture()
                step.at_revision, step.rows_at_revision = at_revision, migrator.counts(at_revision)
                continue
            if phase == "record":
                record_downgrade(migrator, step, before, at_revision)
                if not step.clean:
                    break
                continue
            try:
                action()
            except Exception as error:
                step.error = f"{phase} failed: {describe_error(error)}"
                break
        yield step
        if not step.clean:
            return


class _Progress:
    """Which step of which revision the line walk is at, to say which one failed."""

    phase = "upgrading it"
    step: Step | None = None
    revision: Script | None = None
    made: Step | None = None  # the revision's Step, once its upgrade is done


def _walk_line(
    migrator: Migrator,
    line: list[Script],
    skip: dict[str, str],
    begins: Callable[[Script], None],
    confirm: Callable[[Step], None] | None,
) -> Iterator[Step]:
    done: list[Step] = []
    progress = _Progress()
    steps = partial(_line_steps, migrator=migrator, line=line, done=done, skip=skip, progress=progress, begins=begins)
    try:
        migrator._run(steps, line[-1].revision)
    except UntrackedChange:
        raise
    except Exception as error:
        message = f"{progress.phase} failed: {describe_error(error)}"
        if progress.step is not None and progress.phase.startswith("upgrading it again"):
            progress.step.error = message  # its downgrade left something the upgrade trips on
        elif progress.step is not None and done and done[-1] is progress.step:
            progress.step.error = message  # its Step is recorded already: once, with the error
        elif progress.revision is not None:
            failed = Step(progress.revision, undo_target(progress.revision), error=message)
            if progress.made is not None:  # its downgrade failed: what its upgrade left is known
                failed.at_revision, failed.rows_at_revision = progress.made.at_revision, progress.made.rows_at_revision
            done.append(failed)
        else:
            raise
    faulty = done[-1] if done and not done[-1].clean and done[-1].error is None else None
    if confirm is not None and faulty is not None and faulty.tracked_before is not None:
        confirm(faulty)  # found by comparing what the walk tracked: confirmed before any step is told
    yield from done


def _line_steps(heads, context, *, migrator, line, done, skip, progress, begins) -> Iterator[MigrationStep]:
    """The MigrationSteps of the run of env.py that walks a line, for Alembic to apply one
    after the other; between two of them, inside the run, the schema is captured and the
    rows counted. Each revision: upgrade (after the revision before it, which the last step
    downgraded, is upgraded again), capture, downgrade, capture and compare. On PostgreSQL,
    when the captures read everything the upgrade and the downgrade changed
    (``Migrator.read_all()``: operations on named tables only), a clean downgrade is rolled
    back to the SAVEPOINT taken before it instead: the database is then exactly as the upgrade
    left it, and upgrading it again from a schema found equal to its parent's would run the
    same statements on the same schema. On SQLite (which reads its whole schema again after
    a rollback that undid DDL: quadratic on a long history) such a revision is upgraded again
    by running those statements, recorded as its upgrade ran them (``Changes.statements``),
    on the connection, without its ``upgrade()``, Alembic's operations and SQLAlchemy's
    compiler. SQL text, rows written, an enum type or a sequence, a second connection:
    upgraded again by its ``upgrade()``, as what it changed may be more than a capture shows
    (a leftover PostgreSQL schema fails the upgrade again); and so is every revision on
    MariaDB (whose DDL commits itself). The walk ends with the last revision upgraded again
    or rolled back to, or stops at the first faulty downgrade."""
    if tuple(sorted(heads)) != _parents(line[0]):
        raise RuntimeError(f"the stairway expected the database at {_parents(line[0])}, found it at {heads}")
    with watched(migrator.connection, context, migrator.tracked):
        yield from _line_steps_watched(context, migrator, line, done, skip, progress, begins)


def _line_steps_watched(context, migrator, line, done, skip, progress, begins) -> Iterator[MigrationStep]:
    revision_map = migrator.script.revision_map
    # PostgreSQL holds every lock a transaction takes until it ends, in a table of bounded
    # size: commit after each revision (SQLite has no such table; MariaDB commits each step).
    commit_each = migrator.connection.dialect.name == "postgresql"
    # PostgreSQL only: SQLite reads its whole schema again after a rollback that undid DDL (on
    # a thousand tables, a ROLLBACK TO per revision made the walk's SQL ten times slower)
    rolls_back = migrator.connection.dialect.name == "postgresql"
    # SQLite: instead, the statements the upgrade ran are recorded, and run again (see replays)
    records = migrator.connection.dialect.name == "sqlite"
    before = migrator.capture()
    rows = migrator.counts(before)
    undone: Script | None = None  # downgraded by the last step: upgraded again first
    replays: list | None = None  # the statements its upgrade ran, to run again; None: its upgrade()
    for revision in line:
        begins(revision)
        migrator.track()
        if undone is not None:
            progress.phase = "upgrading it again after its downgrade"
            yield from _upgrade_again(context, migrator, undone, replays)
        if migrator.tracked() is not None:  # what this revision's upgrade does, for read_all()
            migrator.tracked().mark(record=records)
        progress.phase, progress.revision, progress.step, progress.made = "upgrading it", revision, None, None
        yield MigrationStep.upgrade_from_script(revision_map, revision)
        if revision.revision in skip:
            done.append(Step(revision, undo_target(revision), skipped=skip[revision.revision]))
            before, undone = migrator.capture(), None
            rows = migrator.counts(before)
            continue
        step = Step(revision, undo_target(revision), rows_before=rows)
        step.tracked_before = before if migrator.tracking else None
        made = migrator.tracked()  # what the upgrade changed, which the capture reads
        at_revision = migrator.capture()
        rows = migrator.counts(at_revision)
        step.at_revision, step.rows_at_revision = at_revision, rows
        progress.phase, progress.made = "downgrading it", step
        savepoint = migrator.savepoint()  # where DDL is transactional: see Migrator.back_at()
        migrator.track()
        yield _LineDowngrade(revision_map, revision, False)
        undone, progress.step = revision, step
        progress.phase = "comparing the schema after its downgrade"
        unmade = migrator.tracked()
        done.append(record_downgrade(migrator, step, before, at_revision))
        if not step.clean and migrator.untracked_change():
            raise UntrackedChange(step)
        held = migrator.holds(savepoint)  # not if the revision ended the transaction it was taken in
        if step.clean and rolls_back and held and migrator.read_all(made, unmade):
            # Back at this revision by rolling the downgrade back, not by upgrading it again:
            # the step Alembic records the upgrade by (no operation run), then the rollback.
            progress.phase = "rolling its downgrade back"
            yield _recorded_only(revision_map, revision)
            migrator.roll_back(savepoint, to=at_revision)
            undone = None
        else:
            # A faulty one: back at this revision, unless the revision committed the downgrade
            # (autocommit_block(), or the driver's commit: then walk() checks where the database
            # is, Migrator.back_at()). A clean one: kept, or committed already.
            migrator.roll_back(savepoint if held else None, keep=step.clean)
            # Upgraded again next. On SQLite, when the captures read all the upgrade and the
            # downgrade did (as for the rollback above), by the statements the upgrade ran,
            # run again: on the schema found equal to its parent's, its upgrade() would run
            # those same statements, through Alembic's operations and SQLAlchemy's compiler.
            replays = made.statements if migrator.read_all(made, unmade) else None
        if not step.clean:
            return
        before = at_revision
        if commit_each:
            with context.autocommit_block():
                pass
    if undone is not None:
        progress.phase = "upgrading it again after its downgrade"
        migrator.track()
        yield from _upgrade_again(context, migrator, undone, replays)
        if migrator.tracking:
            migrator.counts(migrator.capture())
    if migrator.tracking:  # the last capture, tracked, against the whole schema
        progress.phase = "comparing what the walk tracked with the whole schema"
        if migrator.untracked_change():
            raise UntrackedChange(line[-1])


def _upgrade_again(context, migrator: Migrator, revision: Script, replays: list | None) -> Iterator[MigrationStep]:
    """Upgrade ``revision`` again after its downgrade, as a new run (``as_a_new_run``): its
    upgrade step, or with ``replays``, the step Alembic records the upgrade by (no operation
    run), then those statements run again on the connection."""
    as_a_new_run(context)
    revision_map = migrator.script.revision_map
    if replays is None:
        yield MigrationStep.upgrade_from_script(revision_map, revision)
        return
    yield _recorded_only(revision_map, revision)
    migrator.replay(replays)


def _recorded_only(revision_map, revision: Script) -> MigrationStep:
    """The revision's upgrade step with no operation: Alembic records it in the version table
    (and in the heads it keeps for the run), as the upgrade it stands for would."""
    step = MigrationStep.upgrade_from_script(revision_map, revision)
    step.migration_fn = lambda **_kw: None
    return step


class _LineDowngrade(RevisionStep):
    """A revision's downgrade in the line walk, where the database is at that revision alone
    and the revision has one parent and no dependencies: the revisions it goes back to are that
    parent. Alembic finds them by walking every ancestor of the parent, for each downgrade
    (RevisionStep._unmerge_to_revisions, asked whether the downgrade deletes a branch): the
    walk's cost would grow with the square of the history."""

    def _unmerge_to_revisions(self, heads: set[str]) -> tuple[str, ...]:
        if set(heads) == {self.revision.revision} and len(self.to_revisions) == 1:
            return tuple(self.to_revisions)
        return super()._unmerge_to_revisions(heads)


class UntrackedChange(Exception):
    """The schema or the rows differ from what the walk tracked (migrations/testing/changes.py):
    something changed them outside the walk's connection. ``walk()`` walks again from the
    start of that line of revisions, on a new database, with whole-schema captures."""


def as_a_new_run(context) -> None:
    """Forget the PostgreSQL ENUM types this run's op.create_table() made. SQLAlchemy notes
    each in the run's DDL memo (Alembic's ``impl.memo``) and creates it no more in that run:
    after a downgrade that dropped the type, as a correct one does, the upgrade run again in
    the same run would fail ("type ... does not exist"), where ``alembic upgrade``, a new run,
    does not. The line walk's upgrade after a downgrade is such a new run."""
    memo = getattr(context.impl, "memo", None)
    if isinstance(memo, dict):
        memo.clear()


def _parents(revision: Script) -> tuple[str, ...]:
    """The revisions this one's upgrade starts from, sorted (dependencies aside)."""
    return tuple(sorted(to_tuple(revision.down_revision, default=())))


def record_downgrade(migrator: Migrator, step: Step, before: Captured, at_revision: Captured) -> Step:
    """Record in ``step`` the schema and rows its downgrade left, against ``before``; and
    whether the downgrade did nothing at all to what the upgrade made (``at_revision``)."""
    after = migrator.capture(keep=False)
    step.before, step.after_downgrade = migrator.compare(before, after)
    step.rows_after_downgrade = migrator.counts(after)
    if step.before != step.after_downgrade:
        was, now = migrator.compare(at_revision, after)
        step.downgrade_did_nothing = was == now
    return step
