"""The migration suite on a history with a fault of every kind a real history has: one run
names every faulty revision, with no crash and no false alarm; irreversible revisions are
declared and honoured, by the stairway and by ``alembic downgrade``.

The faulty history goes on from the example history's head, in a copy of the project:
the baked suite (tests/test_migrations.py) runs there in a process of its own.
"""

from __future__ import annotations

import io
import os
import pty
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command, op
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext, MigrationStep, RevisionStep
from alembic.util import CommandError
from sqlalchemy import inspect, text

from migrations.testing.fixtures import project_config
from migrations.testing.stairway import _LineDowngrade, has_data_steps, load_script, walk
from proofs.helpers import PROJECT, alembic_cli
from proofs.test_stairway import HEAD, fresh_on, revision_source

TABLE = (
    'op.create_table("{0}", sa.Column("id", sa.Integer(), nullable=False),'
    ' sa.PrimaryKeyConstraint("id", name="pk_{0}"))'
)
IRREVERSIBLE = 'irreversible: str | None = "drops what cannot be brought back"'


def marked_irreversible(source: str) -> str:
    marked = source.replace("irreversible: str | None = None", IRREVERSIBLE)
    assert marked != source, "script.py.mako no longer writes the irreversible line"
    return marked


def with_module_code(source: str, code: str) -> str:
    """The revision with ``code`` at module level, after its imports."""
    anchor = "from migrations.conditional import data_enabled\n"
    assert anchor in source
    return source.replace(anchor, anchor + code + "\n")


NOTE = (
    'op.create_table("note", sa.Column("id", sa.Integer(), nullable=False),'
    ' sa.Column("body", sa.String(50), nullable=False), sa.Column("title", sa.String(50), nullable=False),'
    ' sa.PrimaryKeyConstraint("id", name="pk_note"))'
)
CHILD = (
    'op.create_table("child_probe", sa.Column("id", sa.Integer(), nullable=False),'
    ' sa.Column("parent_id", sa.Integer(), nullable=False), sa.PrimaryKeyConstraint("id", name="pk_child_probe"),'
    ' sa.ForeignKeyConstraint(["parent_id"], ["parent_probe.id"], name="fk_child_probe_parent_id_parent_probe"))'
)
# Written as SQL: the models' naming convention, which Alembic's operations use, names every CHECK.
CHECKED = (
    'op.execute("CREATE TABLE checked (id INTEGER NOT NULL, qty INTEGER, CONSTRAINT pk_checked PRIMARY KEY (id),'
    ' CONSTRAINT ck_checked_positive CHECK (qty > 0), CHECK (qty < 1000))")'
)


def faulty_history(package: str) -> list[str]:
    """After the example head: a fault of each kind (the comment on each says which)."""
    batch = 'with op.batch_alter_table("note") as batch:\n    batch.'
    return [
        # declared irreversible: its downgrade does nothing, on purpose
        marked_irreversible(revision_source("a1", HEAD, TABLE.format("legacy_flag"))),
        # a silent no-op downgrade
        revision_source("a2", "a1", NOTE),
        # drops the parent table before its child (PostgreSQL, MariaDB refuse; SQLite does not check)
        revision_source(
            "a3",
            "a2",
            f"{TABLE.format('parent_probe')}\n{CHILD}",
            'op.drop_table("parent_probe")\nop.drop_table("child_probe")',
        ),
        # renames an index back under another name: a leftover
        revision_source(
            "a4",
            "a3",
            'op.create_index("ix_note_body", "note", ["body"])',
            'op.drop_index("ix_note_body", table_name="note")\nop.create_index("ix_note_body_old", "note", ["body"])',
        ),
        # renames a column; the downgrade's rename loses NOT NULL on MariaDB
        revision_source(
            "a5",
            "a4",
            batch + 'alter_column("title", new_column_name="heading", existing_type=sa.String(50),'
            " existing_nullable=False)",
            batch + 'alter_column("heading", new_column_name="title", existing_type=sa.String(50))',
        ),
        # named and unnamed CHECK constraints on one table (the schema picture must not crash)
        revision_source("a6", "a5", CHECKED, 'op.drop_table("checked")'),
        revision_source("a7", "a6", 'op.drop_table("checked")', CHECKED),
        # builds a constraint at import that attaches itself to the models' table
        with_module_code(
            revision_source(
                "a8",
                "a7",
                batch + 'create_check_constraint(batch.f("ck_note_body_not_empty"), "body <> \'\'")',
                batch + 'drop_constraint(batch.f("ck_note_body_not_empty"), type_="check")',
            ),
            f"from {package}.models import Note\n\nNOT_EMPTY = sa.CheckConstraint(Note.__table__.c.body != '',"
            ' name="ck_note_body_not_empty")',
        ),
        # inserts a reference row that create_db.py does not make
        revision_source(
            "a9",
            "a8",
            'op.execute("INSERT INTO legacy_flag (id) VALUES (1)")',
            'op.execute("DELETE FROM legacy_flag WHERE id = 1")',
        ),
    ]


MODELS = """

class LegacyFlag(Base):
    __tablename__ = "legacy_flag"

    id: Mapped[int] = mapped_column(primary_key=True)


class Note(Base):
    __tablename__ = "note"
    __table_args__ = (CheckConstraint("body <> ''", name="body_not_empty"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(50), index=True)
    heading: Mapped[str] = mapped_column(String(50))


class ParentProbe(Base):
    __tablename__ = "parent_probe"

    id: Mapped[int] = mapped_column(primary_key=True)


class ChildProbe(Base):
    __tablename__ = "child_probe"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("parent_probe.id"))
"""


@pytest.fixture
def faulty_project(project_copy: Path) -> Path:
    """The project copy with the faulty history, models to match its head, and the baked tests."""
    package = next(project_copy.glob("*/models.py")).parent.name
    for number, source in enumerate(faulty_history(package)):
        (project_copy / "migrations" / "versions" / f"probe_{number}.py").write_text(source)
    models = project_copy / package / "models.py"
    source = models.read_text().replace(
        "from sqlalchemy import MetaData, String",
        "from sqlalchemy import CheckConstraint, ForeignKey, MetaData, String",
    )
    models.write_text(source + MODELS)
    shutil.copytree(PROJECT / "tests", project_copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    return project_copy


EXPECTED_FAULTS = {"sqlite": {"a2", "a4"}, "postgresql": {"a2", "a3", "a4"}, "mysql": {"a2", "a3", "a4", "a5"}}


def run_suite(project: Path, server_url: str, tmp_path: Path) -> dict[str, str | None]:
    """Run the baked migration suite in ``project``: each test's failure message, or None."""
    report = tmp_path / "report.xml"
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    env["TEST_DATABASE_URL"] = server_url
    command = [sys.executable, "-m", "pytest", "tests/test_migrations.py", "-p", "no:cacheprovider", "-q"]
    result = subprocess.run(
        [*command, f"--junitxml={report}"], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    assert report.exists(), result.stdout + result.stderr
    outcomes = {}
    for case in ElementTree.parse(report).iter("testcase"):
        failure = case.find("failure")
        error = case.find("error")
        assert error is None, f"{case.get('name')} crashed: {error.get('message')}"
        outcomes[case.get("name")] = None if failure is None else failure.text or failure.get("message", "")
    return outcomes


def test_one_run_names_every_faulty_revision_with_no_crash_and_no_false_alarm(
    faulty_project, server, dialect, tmp_path
):
    outcomes = run_suite(faulty_project, server.render_as_string(hide_password=False), tmp_path)
    assert outcomes["test_the_history_has_one_head"] is None
    assert outcomes["test_the_models_match_the_schema_at_head"] is None, outcomes  # no false alarm
    for name in (
        "test_each_downgrade_undoes_its_upgrade",
        "test_each_downgrade_undoes_its_upgrade_with_the_data_steps",
    ):
        message = outcomes[name]
        assert message is not None, f"{name} passed on a faulty history"
        named = set(re.findall(r"^E?\s*(a\d) \(a\d\): ", message, flags=re.MULTILINE))
        assert named == EXPECTED_FAULTS[dialect], message
        assert "a2 (a2): its downgrade did nothing" in message and 'irreversible = "why"' in message
        assert "ix_note_body_old" in message
    # schema equal (the import-time constraint is not emitted twice); the reference row is missed
    message = outcomes["test_create_db_builds_what_upgrade_head_builds"]
    assert message is not None and "legacy_flag (1 rows)" in message, message
    assert "Insert those rows in create_db.py" in message


def test_the_walk_skips_irreversible_revisions_and_starts_after_a_given_one(project_copy, new_database):
    versions = project_copy / "migrations" / "versions"
    versions.joinpath("probe_0.py").write_text(marked_irreversible(revision_source("b1", HEAD, TABLE.format("kept"))))
    versions.joinpath("probe_1.py").write_text(revision_source("b2", "b1", TABLE.format("forgotten")))
    script = load_script(project_config(project_copy))
    steps = list(walk(script, lambda: fresh_on(new_database, script, project_copy)))
    assert {step.revision.revision: step.skipped for step in steps}["b1"].startswith("irreversible: drops what")
    assert [step.revision.revision for step in steps if step.fault()] == ["b2"]
    skipped = list(
        walk(
            script,
            lambda: fresh_on(new_database, script, project_copy),
            start_after=HEAD,
            skip={"b2": "known"},
        )
    )
    assert [step.fault() for step in skipped] == [None] * len(skipped)
    assert [step.revision.revision for step in skipped if not step.skipped] == []
    assert {step.skipped for step in skipped if step.revision.revision == "b2"} == {"known"}


def test_alembic_downgrade_past_an_irreversible_revision_stops_before_any_ddl(project_copy, database_url, engine):
    versions = project_copy / "migrations" / "versions"
    versions.joinpath("probe_0.py").write_text(marked_irreversible(revision_source("c1", HEAD, TABLE.format("kept"))))
    versions.joinpath("probe_1.py").write_text(
        revision_source("c2", "c1", TABLE.format("later"), 'op.drop_table("later")')
    )
    assert alembic_cli(database_url, "upgrade", "head", cwd=project_copy).returncode == 0
    result = alembic_cli(database_url, "downgrade", "base", cwd=project_copy)
    assert result.returncode != 0
    assert result.stdout.strip() == (
        "FAILED: revision c1 (probe_0.py) is irreversible: drops what cannot be brought back. "
        "Nothing was downgraded; downgrade to it or a later revision instead."
    ), result.stdout
    assert "Traceback" not in result.stderr
    with engine.connect() as connection:
        assert {"kept", "later"} <= set(inspect(connection).get_table_names())  # no DDL ran, MariaDB too
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "c2"
    offline = project_config(project_copy, output_buffer=io.StringIO())
    offline.attributes.update(database_url=database_url, configure_logger=False)
    with pytest.raises(CommandError, match="revision c1 .* is irreversible"):
        command.downgrade(offline, "c2:base", sql=True)  # --sql is refused too, before any SQL
    assert offline.output_buffer.getvalue() == ""
    command.downgrade(offline, "c2:c1", sql=True)
    assert "DROP TABLE later" in offline.output_buffer.getvalue()
    assert alembic_cli(database_url, "downgrade", "c1", cwd=project_copy).returncode == 0
    with engine.connect() as connection:
        assert "later" not in inspect(connection).get_table_names()


def test_a_revision_not_written_from_our_template_has_no_data_steps(project_copy):
    plain = '''"""A revision as `alembic init`'s template writes it."""
from alembic import op
import sqlalchemy as sa

revision = "d1"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("plain", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade():
    op.drop_table("plain")
'''.replace("{head}", HEAD)
    versions = project_copy / "migrations" / "versions"
    versions.joinpath("probe_0.py").write_text(plain)
    versions.joinpath("probe_1.py").write_text(
        revision_source("d2", "d1", data_upgrades='op.execute("DELETE FROM plain")')
    )
    versions.joinpath("probe_2.py").write_text(revision_source("d3", "d2", TABLE.format("empty_data_steps")))
    script = load_script(project_config(project_copy))
    found = {revision.revision: has_data_steps(revision) for revision in script.walk_revisions()}
    assert (found["d1"], found["d2"], found["d3"]) == (False, True, False)


def test_the_alembic_internals_the_stairway_relies_on_still_behave():
    """The stairway builds a revision's own MigrationSteps and asks ScriptDirectory for the
    steps of ``upgrade X`` / ``downgrade X`` (``_upgrade_revs``, ``_downgrade_revs``): no
    public name does either. Should Alembic change them, this fails first, by name."""
    script = load_script(project_config())
    revision = script.get_revision(HEAD)
    up = MigrationStep.upgrade_from_script(script.revision_map, revision)
    down = MigrationStep.downgrade_from_script(script.revision_map, revision)
    assert (up.revision, up.is_upgrade, down.revision, down.is_downgrade) == (revision, True, revision, True)
    order = [each.revision for each in reversed(list(script.walk_revisions()))]
    assert [step.revision.revision for step in script._upgrade_revs(HEAD, ())] == order
    assert [step.revision.revision for step in script._downgrade_revs("base", (HEAD,))] == order[::-1]
    # the line walk's downgrade step answers Alembic's "does it delete a branch" as Alembic does
    for each in script.walk_revisions():
        if each.down_revision is not None and not each.is_merge_point and not each.dependencies:
            alembic_step = RevisionStep(script.revision_map, each, False)
            ours = _LineDowngrade(script.revision_map, each, False)
            for step in (alembic_step, ours):
                assert step._unmerge_to_revisions({each.revision}) == (each.down_revision,)
                assert not step.should_delete_branch({each.revision})
    # as_a_new_run() clears the memo in which SQLAlchemy notes the PostgreSQL ENUM types a run made
    buffer = io.StringIO()
    context = MigrationContext.configure(dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buffer})
    with Operations.context(context):
        op.create_table("memo_probe", sa.Column("mood", sa.Enum("a", name="memo_probe_mood")))
    assert "CREATE TYPE memo_probe_mood" in buffer.getvalue()
    assert any("memo_probe_mood" in str(noted) for noted in context.impl.memo.values()), context.impl.memo


def test_after_a_fault_the_walk_goes_on_in_place_where_it_can(project_copy, new_database, dialect):
    """Past a faulty revision the walk goes on from the same database when Migrator.back_at()
    finds it as that revision's upgrade left it (a SAVEPOINT on PostgreSQL and SQLite; on
    MariaDB, a downgrade that changed nothing but the version table): the same faults, on
    fewer new databases. MariaDB's a4 and a5 left changes behind: a new database each."""
    package = next(project_copy.glob("*/models.py")).parent.name
    for number, source in enumerate(faulty_history(package)[:7]):  # a1..a7: imports nothing of the models
        (project_copy / "migrations" / "versions" / f"probe_{number}.py").write_text(source)
    script = load_script(project_config(project_copy))
    made = []

    def fresh():
        made.append(1)
        return fresh_on(new_database, script, project_copy)

    probes = []

    def probe():  # a database each fault found with tracked captures is confirmed on (see walk())
        probes.append(1)
        return fresh_on(new_database, script, project_copy)

    steps = list(walk(script, fresh, probe=probe))
    assert {step.revision.revision for step in steps if step.fault()} == EXPECTED_FAULTS[dialect]
    assert [step.revision.revision for step in steps][-7:] == [f"a{n}" for n in range(1, 8)]
    assert len(made) == {"sqlite": 1, "postgresql": 1, "mysql": 3}[dialect]
    assert len(probes) <= len(EXPECTED_FAULTS[dialect])  # at most one per fault


def test_an_upgrade_that_fails_only_in_a_run_of_its_own_is_named_and_the_walk_goes_on(project_copy, new_database):
    """Optuna's history on PostgreSQL: a revision that makes an ENUM type an earlier one made
    upgrades from base in one run (SQLAlchemy notes the type in the run's memo), and fails on
    a database at the revision before it, as an application's database upgraded in two runs
    would. Here the run's own state is a probe attribute: d2 fails unless d1 ran in the same
    run, which happens in the walk once d1 was faulty. d2 is named, with "from base it
    passes", and the walk goes on past it: d3 is walked, on a new database brought to d2."""
    versions = project_copy / "migrations" / "versions"
    d1 = TABLE.format("probe_d1") + "\nop.get_context().probe_d1_ran = True"
    versions.joinpath("probe_0.py").write_text(revision_source("d1", HEAD, d1))  # its downgrade: nothing
    needs_d1 = 'if not getattr(op.get_context(), "probe_d1_ran", False):\n    raise RuntimeError("d1 did not run")\n'
    versions.joinpath("probe_1.py").write_text(
        revision_source("d2", "d1", needs_d1 + TABLE.format("probe_d2"), 'op.drop_table("probe_d2")')
    )
    versions.joinpath("probe_2.py").write_text(revision_source("d3", "d2", TABLE.format("probe_d3")))
    script = load_script(project_config(project_copy))
    steps = list(walk(script, lambda: fresh_on(new_database, script, project_copy)))
    walked = [step.revision.revision for step in steps]
    assert walked[-3:] == ["d1", "d2", "d3"] and len(walked) == len(set(walked)), walked
    faults = {step.revision.revision: step.fault() for step in steps if step.fault()}
    assert set(faults) == {"d1", "d2", "d3"}, faults  # d3's downgrade does nothing either
    assert faults["d2"].startswith("d2 (d2): upgrading it failed: RuntimeError: d1 did not run (from a database at d1")
    assert "upgraded from base in one run gets past it, and the walk went on" in faults["d2"], faults["d2"]
    assert "did nothing" in faults["d3"], faults["d3"]


def test_the_recipe_tests_leave_a_foreign_historys_own_limits_to_the_migration_suite(project_copy, server, tmp_path):
    """Real histories read the database in their revisions (no --sql possible) and have models
    ahead of their head: the baked tests/test_recipes.py says the first with a skip naming the
    revision, and leaves the second to test_migrations.py (autogenerate writes a revision
    with operations, not an empty one), instead of failing as if a recipe were broken."""
    versions = project_copy / "migrations" / "versions"
    reads = 'op.get_bind().execute(sa.text("SELECT 1")).scalar_one()'  # None in --sql mode: AttributeError
    versions.joinpath("probe_0.py").write_text(revision_source("e1", HEAD, schema_upgrades=reads))
    models = next(project_copy.glob("*/models.py"))
    models.write_text(
        models.read_text() + '\n\nclass DriftProbe(Base):\n    __tablename__ = "drift_probe"\n\n'
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
    )
    shutil.copytree(PROJECT / "tests", project_copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    env["TEST_DATABASE_URL"] = server.render_as_string(hide_password=False)
    command = [sys.executable, "-m", "pytest", "tests/test_recipes.py", "-p", "no:cacheprovider", "-q", "-rs"]
    result = subprocess.run(command, cwd=project_copy, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    skipped = r"SKIPPED .*this history cannot be written as SQL: probe_0\.py \(e1\) raised AttributeError"
    assert re.search(skipped, output), output


@pytest.mark.parametrize("raised", ["in-its-code", "by-the-database"])
def test_a_history_that_cannot_reach_head_says_so_in_one_line(project_copy, server, tmp_path, raised):
    """A real history can fail to upgrade an empty database (ZenML's needs a row its
    application writes; one of its revisions refuses SQLite): the stairway names the revision,
    and the tests that need a database upgraded to head fail at setup with one line naming it
    too, not a traceback through env.py; the recipe tests that upgrade to head skip, naming it."""
    refusing = 'raise NotImplementedError(f"Unsupported engine: {op.get_bind().dialect.name}")'
    if raised == "by-the-database":
        refusing = 'op.execute("SELECT id FROM workspace_probe_not_there")'
    versions = project_copy / "migrations" / "versions"
    versions.joinpath("probe_0.py").write_text(revision_source("c1", HEAD, schema_upgrades=refusing))
    shutil.copytree(PROJECT / "tests", project_copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    report = tmp_path / "report.xml"
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    env["TEST_DATABASE_URL"] = server.render_as_string(hide_password=False)
    command = [sys.executable, "-m", "pytest", "tests/test_migrations.py", "tests/test_recipes.py", "-q", "-rs"]
    result = subprocess.run(
        [*command, "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=project_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert report.exists(), result.stdout + result.stderr
    cases = {case.get("name"): case for case in ElementTree.parse(report).iter("testcase")}
    why = "NotImplementedError: Unsupported engine" if raised == "in-its-code" else "workspace_probe_not_there"
    stairway = cases["test_each_downgrade_undoes_its_upgrade"].find("failure")
    assert stairway is not None and "c1 (c1): upgrading it failed: " in (stairway.text or ""), stairway
    assert why in stairway.text
    for name in ("test_the_models_match_the_schema_at_head", "test_create_db_builds_what_upgrade_head_builds"):
        error = cases[name].find("error")
        assert error is not None, f"{name} did not fail at setup"
        said = error.get("message", "")
        assert "upgrade head on a new database failed" in said and "c1 (probe_0.py)" in said and why in said, said
        assert "Traceback" not in (error.text or "") and "env.py" not in (error.text or ""), error.text
    for name in (  # the autogenerate recipe runs on a copy of create_db.py's build, which runs no revision
        "test_autogenerate_writes_a_revision_only_for_a_model_change",
    ):
        assert all(cases[name].find(kind) is None for kind in ("failure", "error", "skipped")), name
    for name in ("test_a_shared_connection_leaves_the_commit_to_its_caller",):
        skipped = cases[name].find("skipped")
        assert skipped is not None, f"{name}: {ElementTree.tostring(cases[name], encoding='unicode')[:2000]}"
        message = skipped.get("message", "")
        assert "this history cannot upgrade an empty database to head: probe_0.py (c1) raised" in message, message
        assert why in message, message
    failed = [name for name, case in cases.items() if any(case.find(kind) is not None for kind in ("failure", "error"))]
    assert sorted(failed) == sorted(
        [
            "test_each_downgrade_undoes_its_upgrade",
            "test_each_downgrade_undoes_its_upgrade_with_the_data_steps",  # the example history has data steps
            "test_the_models_match_the_schema_at_head",
            "test_create_db_builds_what_upgrade_head_builds",
        ]
    ), result.stdout


def on_a_terminal(project: Path, env: dict[str, str]) -> str:
    """What the baked stairway test prints when its output is a terminal (a pseudo-terminal)."""
    primary, secondary = pty.openpty()
    command = [sys.executable, "-m", "pytest", "tests/test_migrations.py", "-q", "-p", "no:cacheprovider"]
    command += ["-k", "downgrade_undoes_its_upgrade and not data"]
    process = subprocess.Popen(command, cwd=project, env=env, stdin=secondary, stdout=secondary, stderr=secondary)
    os.close(secondary)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the other end is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
        process.wait(timeout=600)
    return b"".join(chunks).decode(errors="replace")


def test_a_walk_says_where_it_is_on_a_terminal_and_nothing_in_ci(project_copy, server):
    """On a terminal the stairway test shows revision n of N, the line rewritten in place and
    cleared at the end, before pytest's summary; under CI=true it prints no such line."""
    versions = project_copy / "migrations" / "versions"
    for number in range(1, 4):
        table = f"probe_f{number}"
        parent = f"f{number - 1}" if number > 1 else HEAD
        source = revision_source(f"f{number}", parent, TABLE.format(table), f'op.drop_table("{table}")')
        versions.joinpath(f"probe_{number}.py").write_text(source)
    shutil.copytree(PROJECT / "tests", project_copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "CI")}
    env["TEST_DATABASE_URL"] = server.render_as_string(hide_password=False)
    shown = on_a_terminal(project_copy, env)
    total = len(list(load_script(project_config(project_copy)).walk_revisions()))
    assert re.search(rf"revision {total} of {total}, f3 \(f3\)", shown), shown
    assert "\r" in shown and "passed" in shown.rsplit("revision", 1)[1], shown
    quiet = on_a_terminal(project_copy, {**env, "CI": "true"})
    assert "passed" in quiet and "revision" not in quiet, quiet
