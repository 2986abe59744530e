"""The deploy lint (migrations/deploy_lint.py): what a revision does to a live database.

- A history written to trip every rule, through Alembic's operations, a batch, and the SQL of
  ``op.execute``: the lint names exactly the findings each database should have (and none for
  the safe ways it recommends, or for tables made in the same revision), each at its line.
- ``# deploy-ok: <rule> -- <reason>`` acknowledges a finding; one that names no rule, or gives
  no reason, is a problem, and its finding stays open.
- Where users meet it: ``python -m migrations.cli lint`` (the revisions the database has not
  applied, after the baseline; ``--format json``), and the baked migration suite's test.
- Claims measured, not believed: every rule's claim about a live table (its lock, blocked
  reads and writes, a rewrite, time that grows with the rows, failing on a table with rows)
  is measured on the server under test, with a second connection reading and writing while
  the statement runs (proofs/locks.py); and the statements the lint does not report on a
  database are measured to be harmless there.
- The safe ways pass the migration suite.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from migrations import deploy_lint
from migrations.testing.fixtures import project_config
from migrations.testing.stairway import load_script
from proofs.helpers import PROJECT, run_in_project
from proofs.test_long_histories import run_suite as run_baked_suite
from proofs.test_stairway import HEAD, revision_source
from proofs.test_walk import run_suite

COLUMNS = 'sa.Column("x", sa.Integer()), sa.Column("s", sa.String(100)), sa.Column("n", sa.Integer())'
OLD = 'sa.Column("old", sa.Integer())'
TABLES = f"""op.create_table("probe_a", sa.Column("id", sa.Integer(), primary_key=True), {COLUMNS}, {OLD})
op.create_index("ix_probe_a_x", "probe_a", ["x"])
op.create_table("probe_p", sa.Column("id", sa.Integer(), primary_key=True))
op.create_table("probe_p2", sa.Column("id", sa.Integer(), nullable=False))"""

# Each operation of the tripping revision, and the rules it must be named under, per database.
OPERATIONS = [
    ('op.create_index("ix_probe_a_n", "probe_a", ["n"])', {"postgresql": {"add-index"}}),
    ('op.drop_index("ix_probe_a_x", table_name="probe_a")', {"postgresql": {"drop-index"}}),
    (
        'op.create_index("ix_probe_a_nx", "probe_a", ["n", "x"], postgresql_concurrently=True)',
        {"postgresql": {"concurrently-in-transaction"}},
    ),
    ('op.create_primary_key("pk_probe_p2", "probe_p2", ["id"])', {"postgresql": {"add-primary-key"}}),
    (
        'op.add_column("probe_a", sa.Column("p", sa.Integer(), sa.ForeignKey("probe_p.id"), unique=True))',
        {"postgresql": {"add-foreign-key", "add-unique-constraint"}, "mariadb": {"add-foreign-key"}},
    ),
    (
        'op.add_column("probe_a", sa.Column("gx", sa.Integer(), sa.Computed("x + 1", persisted=True)))',
        {"postgresql": {"add-generated-column"}},
    ),
    ('op.create_unique_constraint("uq_probe_a_x", "probe_a", ["x"])', {"postgresql": {"add-unique-constraint"}}),
    (
        'op.create_foreign_key("fk_probe_a_n", "probe_a", "probe_p", ["n"], ["id"])',
        {"postgresql": {"add-foreign-key"}, "mariadb": {"add-foreign-key"}},
    ),
    (
        'op.create_check_constraint("ck_probe_a_x", "probe_a", "x >= 0")',
        {"postgresql": {"add-check-constraint"}, "mariadb": {"add-check-constraint"}},
    ),
    ('op.add_column("probe_a", sa.Column("c", sa.Integer(), nullable=False))', {"*": {"add-column-not-null"}}),
    (
        'op.add_column("probe_a", sa.Column("u", sa.String(36), server_default=sa.text("gen_random_uuid()")))',
        {"postgresql": {"add-column-volatile-default"}},
    ),
    (
        'op.alter_column("probe_a", "x", type_=sa.BigInteger(), existing_type=sa.Integer())',
        {"postgresql": {"change-type"}, "mariadb": {"change-type"}},
    ),
    (
        'op.alter_column("probe_a", "s", type_=sa.String(50), existing_type=sa.String(100))',
        {"postgresql": {"change-type", "narrow-type"}, "mariadb": {"change-type", "narrow-type"}},
    ),
    (
        'op.alter_column("probe_a", "s", type_=sa.Text(), existing_type=sa.String(50))',
        {"mariadb": {"change-type"}},  # PostgreSQL makes a VARCHAR TEXT without a rewrite
    ),
    (
        'op.alter_column("probe_a", "n", nullable=False, existing_type=sa.Integer())',
        {"postgresql": {"set-not-null", "writes-null"}, "*": {"writes-null"}},
    ),
    (
        'op.alter_column("probe_a", "old", new_column_name="renamed", existing_type=sa.Integer())',
        {"*": {"rename-column"}},
    ),
    ('op.drop_column("probe_a", "renamed")', {"*": {"drop-column"}}),
    ('op.rename_table("probe_p", "probe_q")', {"*": {"rename-table"}}),
    ('op.drop_table("probe_q")', {"*": {"drop-table"}}),
    (
        'with op.batch_alter_table("probe_a") as batch:\n    batch.create_index("ix_probe_a_s", ["s"])',
        {"postgresql": {"add-index"}},
    ),
    (
        'op.alter_column("probe_a", "x", server_default=None, existing_server_default="0", existing_type=sa.Integer())',
        {"*": {"drop-default"}},
    ),
    (  # types given as classes, as many histories write them
        'op.alter_column("probe_a", "n", type_=sa.SmallInteger, existing_type=sa.Integer)',
        {"postgresql": {"change-type", "narrow-type"}, "mariadb": {"change-type", "narrow-type"}},
    ),
    (  # a variant for the dialect is what it runs: on PostgreSQL VARCHAR(100) to VARCHAR(200), no rewrite
        'op.alter_column("probe_a", "s", type_=sa.String(50).with_variant(sa.String(200), "postgresql"), '
        "existing_type=sa.String(100))",
        {"mariadb": {"change-type", "narrow-type"}},
    ),
    (
        'op.add_column("probe_a", sa.Column("k", sa.Integer(), sa.CheckConstraint("k > 0")))',
        {"postgresql": {"add-check-constraint"}, "mariadb": {"add-check-constraint"}},
    ),
    ('op.get_bind().execute(sa.text("CREATE INDEX ix_bind ON probe_a (x)"))', {"postgresql": {"add-index"}}),
    ('op.drop_index("ix_probe_a_n")', {"postgresql": {"drop-index"}}),
    ('op.execute("UPDATE probe_a SET x = 1")', {"postgresql": {"backfill-under-lock"}}),  # probe_a altered above
    (
        'op.drop_view(ReplaceableObject("probe_v", "SELECT id FROM probe_a"))',
        {"*": {"drop-object"}},
    ),
    (
        'op.invoke(ReplaceOp(FUNCTION, R("probe_f(a integer)", BODY), R("probe_f(a integer, b integer)", BODY)))',
        {"postgresql": {"change-signature"}, "mariadb": {"change-signature"}},
    ),
    (
        'op.invoke(ReplaceOp(FUNCTION, R("probe_g(a integer)", BODY), R("probe_g( a INTEGER )", BODY)))',
        {},  # the same arguments: a new body only
    ),
    # Safe ways, and tables made in the same revision: nothing to name.
    (
        "with op.get_context().autocommit_block():\n"
        '    op.create_index("ix_probe_a_c", "probe_a", ["c"], postgresql_concurrently=True)',
        {},
    ),
    ('op.create_check_constraint("ck_probe_a_n", "probe_a", "n > 0", postgresql_not_valid=True)', {}),
    ('op.add_column("probe_a", sa.Column("d", sa.Integer(), nullable=False, server_default="0"))', {}),
    ('op.add_column("probe_a", sa.Column("e", sa.Integer()))', {}),
    ('op.create_table("probe_new", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("v", sa.Integer()))', {}),
    ('op.create_index("ix_probe_new_v", "probe_new", ["v"])', {}),
    ('op.add_column("probe_new", sa.Column("w", sa.Integer(), nullable=False))', {}),
    ('op.execute("UPDATE probe_new SET v = 1")', {}),  # a new table's rows are nobody's yet
]

# The same through op.execute's SQL.
STATEMENTS = [
    ("CREATE INDEX ix_sql_x ON probe_a (x)", {"postgresql": {"add-index"}}),
    ("CREATE UNIQUE INDEX IF NOT EXISTS ix_sql_u ON probe_a (x)", {"postgresql": {"add-index"}}),
    ("DROP INDEX ix_sql_x", {"postgresql": {"drop-index"}}),
    (
        "ALTER TABLE probe_a ADD CONSTRAINT fk_sql FOREIGN KEY (n) REFERENCES probe_p (id)",
        {"postgresql": {"add-foreign-key"}, "mariadb": {"add-foreign-key"}},
    ),
    (
        "ALTER TABLE probe_a ADD CONSTRAINT ck_sql CHECK (n > 0)",
        {"postgresql": {"add-check-constraint"}, "mariadb": {"add-check-constraint"}},
    ),
    ("ALTER TABLE probe_a ADD CONSTRAINT uq_sql UNIQUE (n)", {"postgresql": {"add-unique-constraint"}}),
    (
        "ALTER TABLE probe_a ALTER COLUMN n TYPE bigint",
        {"postgresql": {"change-type"}, "mariadb": {"change-type"}},
    ),
    (
        "ALTER TABLE probe_a ALTER COLUMN n SET NOT NULL",
        {"postgresql": {"set-not-null", "writes-null"}, "*": {"writes-null"}},
    ),
    ("ALTER TABLE probe_a ADD COLUMN f integer NOT NULL", {"*": {"add-column-not-null"}}),
    ("ALTER TABLE probe_a DROP COLUMN f", {"*": {"drop-column"}}),
    ("ALTER TABLE probe_a RENAME COLUMN n TO m", {"*": {"rename-column"}}),
    ("ALTER TABLE probe_a RENAME TO probe_b", {"*": {"rename-table"}}),
    ("DROP TABLE probe_b", {"*": {"drop-table"}}),
    # Safe ways, and a table made in the same revision.
    ("CREATE INDEX CONCURRENTLY ix_sql_c ON probe_a (x)", {"postgresql": {"concurrently-in-transaction"}}),
    ("ALTER TABLE probe_a ADD CONSTRAINT fk_sql2 FOREIGN KEY (n) REFERENCES probe_p (id) NOT VALID", {}),
    ("ALTER TABLE probe_a VALIDATE CONSTRAINT fk_sql2", {}),
    ("ALTER TABLE probe_a ADD COLUMN g integer NOT NULL DEFAULT 0", {}),
    ("ALTER TABLE probe_a ADD CONSTRAINT uq_sql2 UNIQUE USING INDEX ix_sql_u", {}),
    ("CREATE TABLE probe_sql (id integer PRIMARY KEY, v integer)", {}),
    ("CREATE INDEX ix_probe_sql_v ON probe_sql (v)", {}),
    ("CREATE OR REPLACE VIEW probe_v AS SELECT id FROM probe_a", {}),
]


def expected_for(rules: dict[str, set[str]], dialect: str) -> set[str]:
    return set(rules.get(dialect, rules.get("*", set())))


def tripping_history(project: Path) -> dict[str, list[tuple[int, dict[str, set[str]]]]]:
    """Write the revisions into ``project``; return, per revision, each operation's first line
    in its file and the rules expected there."""
    by_operation = "\n".join(
        [
            "from migrations.replaceable import FUNCTION, ReplaceableObject, ReplaceOp",
            "R = ReplaceableObject",
            "BODY = 'RETURNS integer AS $$ SELECT 1 $$ LANGUAGE sql'",
        ]
        + [code for code, _ in OPERATIONS]
    )
    by_sql = "\n".join(f"op.execute({sql!r})" for sql, _ in STATEMENTS)
    sources = {
        "t1": revision_source("t1", HEAD, TABLES),
        "t2": revision_source("t2", "t1", by_operation),
        # Once more, in data_upgrades(): the lint reads data steps too.
        "t3": revision_source("t3", "t2", data_upgrades=by_sql),
    }
    expected = {}
    for name, source in sources.items():
        (project / "migrations" / "versions" / f"probe_{name}.py").write_text(source)
        lines = source.splitlines()
        cases = OPERATIONS if name == "t2" else STATEMENTS if name == "t3" else []
        found = []
        for code, rules in cases:
            first = code.splitlines()[0] if name == "t2" else f"op.execute({code!r})"
            number = next(i for i, line in enumerate(lines, 1) if line.strip() == first.strip())
            inner = number + len(code.splitlines()) - 1  # an op inside a with block: its own line
            found.append((inner, rules))
        expected[name] = found
    return expected


def findings_by_line(report: deploy_lint.Report, revision: str) -> dict[int, set[str]]:
    lines: dict[int, set[str]] = {}
    for finding in report.findings:
        if finding.revision == revision:
            lines.setdefault(finding.line, set()).add(finding.rule)
    return lines


@pytest.mark.parametrize("dialect", deploy_lint.DIALECTS)
def test_a_history_written_to_trip_every_rule_is_named_exactly(project_copy: Path, dialect: str):
    expected = tripping_history(project_copy)
    config = project_config(project_copy)
    script = load_script(config)
    report = deploy_lint.lint(config, deploy_lint.revisions_in(script, f"{HEAD}:heads"), dialect, script)
    assert report.revisions == ["t1", "t2", "t3"]
    assert not report.problems and not report.notes, report.text()
    for revision in ("t1", "t2", "t3"):
        want = {line: expected_for(rules, dialect) for line, rules in expected[revision]}
        want = {line: rules for line, rules in want.items() if rules}
        assert findings_by_line(report, revision) == want, (revision, report.text())
    named = {finding.rule for finding in report.findings}
    applicable = {code for code, rule in deploy_lint.RULES.items() if rule.applies_to(dialect) and not rule.asked_only}
    assert named == applicable - {
        "lock-timeout"
    }  # every rule that applies here was tripped, through operations and SQL
    # With no lock timeout for the run, each revision that locks an existing table is named once more.
    config.set_main_option("ddl_lock_timeout", "0")
    unlimited = deploy_lint.lint(config, deploy_lint.revisions_in(script, f"{HEAD}:heads"), dialect, script)
    waiting = [
        (finding.revision, finding.operation) for finding in unlimited.findings if finding.rule == "lock-timeout"
    ]
    assert waiting == (
        []
        if dialect == "sqlite"
        else [("t2", "create_index on probe_a"), ("t3", "execute 'CREATE INDEX ix_sql_x ON probe_a (x)'")]
    )
    for finding in report.findings:  # one line each, saying what it does and the safe way
        assert "\n" not in finding.text() and "Safe: " in finding.message


def test_a_type_with_a_variant_is_shown_as_the_dialect_runs_it(project_copy: Path):
    """Arize Phoenix's "change jsonb to json" revision: the existing type is
    ``JSON().with_variant(postgresql.JSONB(), "postgresql")``. On PostgreSQL the column is
    JSONB, and the finding says so, not "type JSON() (was JSON())"."""
    variant = 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")'
    change = "from sqlalchemy.dialects import postgresql\n"
    change += f'op.alter_column("probe_a", "x", type_=sa.JSON(), existing_type={variant})'
    versions = project_copy / "migrations" / "versions"
    (versions / "probe_t1.py").write_text(revision_source("t1", HEAD, TABLES))
    (versions / "probe_t2.py").write_text(revision_source("t2", "t1", change))
    config = project_config(project_copy)
    script = load_script(config)
    report = deploy_lint.lint(config, deploy_lint.revisions_in(script, f"{HEAD}:heads"), "postgresql", script)
    changes = [finding.operation for finding in report.findings if finding.rule == "change-type"]
    assert changes == ["alter_column probe_a.x type JSON() (was JSONB(astext_type=Text()))"], report.text()


@pytest.mark.parametrize("dialect", deploy_lint.DIALECTS)
def test_without_their_sql_the_same_operations_are_read(project_copy: Path, dialect: str):
    """Unless MariaDB is to be asked, the lint does not render Alembic's operations as SQL
    (the rules read the operations): it writes down the same operations, at the same lines,
    in the same batches and autocommit blocks, those that a project's own operations
    (op.replace_sp...) invoke included, on the history written to trip every rule."""
    tripping_history(project_copy)
    config = project_config(project_copy)
    script = load_script(config)
    revisions = deploy_lint.revisions_in(script, f"{HEAD}:heads")

    def seen(render: bool) -> dict[str, list]:
        with deploy_lint.reading(config, script, dialect, render=render) as read:
            return {
                revision.revision: [
                    (type(item.operation).__name__, item.line, item.batch_table, item.in_autocommit_block)
                    for item in read(revision)[0]
                ]
                for revision in revisions
            }

    rendered, unrendered = seen(True), seen(False)
    assert unrendered == rendered
    assert "ExecuteSQLOp" in {kind for kind, *_ in rendered["t2"]}  # what op.replace_sp() invokes


STOPPED_IN_A_BLOCK = """op.create_table("probe_b", sa.Column("id", sa.Integer(), primary_key=True))
with op.get_context().autocommit_block():
    op.create_index("ix_probe_b_id", "probe_b", ["id"])
    raise RuntimeError("stopped here")"""
MOOD = 'sa.Enum("happy", "sad", name="probe_mood")'


@pytest.mark.parametrize("dialect", deploy_lint.DIALECTS)
def test_revisions_read_one_after_the_other_are_each_read_as_alone(project_copy: Path, dialect: str):
    """The lint reads every revision in one offline context (configured once), each as a new
    run: what it records for each (operation, line, SQL, inside an autocommit block or not) is
    what reading that revision alone records, after one that stopped inside an autocommit
    block, and for an enum type made, dropped with its table and made again (PostgreSQL
    renders its CREATE TYPE each time, as each revision's own run does)."""
    sources = {
        "t1": revision_source("t1", HEAD, TABLES),
        "t2": revision_source("t2", "t1", STOPPED_IN_A_BLOCK),
        "t3": revision_source("t3", "t2", 'op.add_column("probe_a", sa.Column("m", sa.Integer()))'),
        "t4": revision_source("t4", "t3", f'op.create_table("probe_e", sa.Column("mood", {MOOD}))'),
        "t5": revision_source("t5", "t4", 'op.drop_table("probe_e")\nop.execute("DROP TYPE IF EXISTS probe_mood")'),
        "t6": revision_source("t6", "t5", f'op.create_table("probe_e", sa.Column("mood", {MOOD}))'),
    }
    for name, source in sources.items():
        (project_copy / "migrations" / "versions" / f"probe_{name}.py").write_text(source)
    config = project_config(project_copy)
    script = load_script(config)
    revisions = deploy_lint.revisions_in(script, f"{HEAD}:heads")

    def seen(recorded):
        return [
            (type(item.operation).__name__, item.line, item.batch_table, item.sql, item.in_autocommit_block)
            for item in recorded
        ]

    with deploy_lint.reading(config, script, dialect) as read:
        together = {revision.revision: read(revision) for revision in revisions}
    for revision in revisions:
        alone = deploy_lint.operations_of(config, script, revision, dialect)
        assert (seen(together[revision.revision][0]), together[revision.revision][1]) == (seen(alone[0]), alone[1])
    assert together["t2"][1] == "RuntimeError: stopped here"
    assert [item.in_autocommit_block for item in together["t3"][0]] == [False]
    if dialect == "postgresql":
        for name in ("t4", "t6"):
            assert "CREATE TYPE probe_mood" in together[name][0][0].sql, together[name][0][0].sql


ACKNOWLEDGING = """# deploy-ok: add-column-not-null -- probe_a is empty until the next release
op.add_column("probe_a", sa.Column("c", sa.Integer(), nullable=False))
op.drop_column("probe_a", "n")  # deploy-ok: drop-column -- no released version reads n
# deploy-ok: add-index, drop-index -- probe_a takes no writes
with op.batch_alter_table("probe_a") as batch:
    batch.create_index("ix_probe_a_s", ["s"])
    batch.drop_index("ix_probe_a_x")
# deploy-ok: drop-table
op.drop_table("probe_p")
op.drop_column("probe_a", "old")  # deploy-ok: drop-colum -- a typo
op.drop_column("probe_a", "s")"""


def test_an_acknowledged_finding_is_kept_with_its_reason_and_a_bad_acknowledgement_is_a_problem(project_copy):
    (project_copy / "migrations" / "versions" / "probe_t1.py").write_text(revision_source("t1", HEAD, TABLES))
    source = revision_source("t2", "t1", ACKNOWLEDGING)
    (project_copy / "migrations" / "versions" / "probe_t2.py").write_text(source)
    config = project_config(project_copy)
    script = load_script(config)
    report = deploy_lint.lint(config, deploy_lint.revisions_in(script, "t1:t2"), "postgresql", script)
    reasons = {finding.operation: finding.acknowledged for finding in report.findings}
    assert reasons == {
        "add_column probe_a.c": "probe_a is empty until the next release",  # the line above
        "drop_column probe_a.n": "no released version reads n",  # on its line
        "create_index ix_probe_a_s on probe_a (s)": "probe_a takes no writes",  # above the with that holds it
        "drop_index ix_probe_a_x on probe_a": "probe_a takes no writes",
        "drop_table probe_p": None,  # no reason: not acknowledged
        "drop_column probe_a.old": None,  # no such rule
        "drop_column probe_a.s": None,  # a comment two statements up covers nothing here
    }
    assert len(report.problems) == 2 and all("probe_t2.py:" in problem for problem in report.problems)
    assert any("without a reason" in problem for problem in report.problems)
    assert any("names no rule: drop-colum" in problem for problem in report.problems)


def test_the_command_lints_what_the_database_has_not_applied_and_the_suite_fails_on_what_is_open(
    project_copy, new_database, server, dialect
):
    (project_copy / "migrations" / "versions" / "probe_t1.py").write_text(revision_source("t1", HEAD, TABLES))
    t2 = revision_source(
        "t2", "t1", 'op.drop_column("probe_a", "old")', 'op.add_column("probe_a", sa.Column("old", sa.Integer()))'
    )
    (project_copy / "migrations" / "versions" / "probe_t2.py").write_text(t2)
    url = new_database()
    assert run_in_project(url, "-m", "alembic", "upgrade", "t1", cwd=project_copy).returncode == 0
    result = run_in_project(url, "-m", "migrations.cli", "lint", cwd=project_copy)
    assert result.returncode != 0, result.stdout + result.stderr
    first, summary, failed = result.stdout.splitlines()  # nothing else
    assert first.startswith("migrations/versions/probe_t2.py:") and " t2 drop-column " in first
    assert summary.startswith("1 finding in 1 revision for ")
    assert failed == "FAILED: 1 deploy finding not acknowledged (listed above)"
    shown = run_in_project(url, "-m", "migrations.cli", "lint", "base:heads", "--format", "json", cwd=project_copy)
    data = json.loads(shown.stdout)
    # the example history's acknowledged index and procedure (PostgreSQL's has arguments), and t2's
    example = ["add-index", "change-signature"] if dialect == "postgresql" else []
    assert [finding["rule"] for finding in data["findings"]] == [*example, "drop-column"]
    assert [finding["acknowledged"] is None for finding in data["findings"]] == [False] * len(example) + [True]
    # The baked suite fails on it, naming it, until the baseline says t2 is deployed everywhere.
    failed = run_baked_suite(url, project_copy, "-k", "safe_to_deploy")
    assert failed.returncode == 1 and "t2 drop-column [" in failed.stdout, failed.stdout
    for name, setting in (
        ("alembic.ini", "deploy_lint_baseline = t2"),
        ("pyproject.toml", 'deploy_lint_baseline = "t2"'),
    ):
        settings = project_copy / name  # wherever the bake keeps Alembic's settings
        text = settings.read_text()
        commented = re.search(r"^# deploy_lint_baseline = .*$", text, re.M)
        if commented:
            settings.write_text(text.replace(commented.group(), setting))
    assert run_in_project(url, "-m", "migrations.cli", "lint", cwd=project_copy).returncode == 0
    passed = run_baked_suite(url, project_copy, "-k", "safe_to_deploy")
    assert passed.returncode == 0, passed.stdout


ASKING = """op.alter_column("probe_a", "s", type_=sa.String(120), existing_type=sa.String(100))
op.alter_column("probe_a", "x", type_=sa.BigInteger(), existing_type=sa.Integer())
op.create_foreign_key("fk_probe_a_x", "probe_a", "probe_p", ["id"], ["id"])
op.add_column("probe_a", sa.Column("g", sa.Integer(), sa.Computed("x + 1", persisted=True)))
op.create_index("ix_probe_a_s", "probe_a", ["s"])
op.add_column("probe_a", sa.Column("y", sa.Integer()))
op.add_column("probe_a", sa.Column("z", sa.Integer()))
op.create_index("ix_probe_a_z", "probe_a", ["z"])"""


def test_mariadb_is_asked_how_it_would_run_each_alter_instead_of_guessing(project_copy, server, dialect):
    if dialect != "mysql":
        pytest.skip("only MariaDB answers ALGORITHM= and LOCK= for an ALTER before running it")
    (project_copy / "migrations" / "versions" / "probe_t1.py").write_text(revision_source("t1", HEAD, TABLES))
    (project_copy / "migrations" / "versions" / "probe_t2.py").write_text(revision_source("t2", "t1", ASKING))
    config = project_config(project_copy)
    script = load_script(config)
    revisions = deploy_lint.revisions_in(script, "t1:t2")
    guessed = deploy_lint.lint(config, revisions, "mariadb", script)
    asked = deploy_lint.lint(config, revisions, "mariadb", script, ask=server)
    assert not asked.notes, asked.notes
    assert sorted((finding.rule, finding.operation) for finding in guessed.findings) == [
        ("add-foreign-key", "create_foreign_key fk_probe_a_x on probe_a"),
        ("change-type", "alter_column probe_a.s type String(length=120) (was String(length=100))"),
        ("change-type", "alter_column probe_a.x type BigInteger() (was Integer())"),
    ]
    # The server: a longer VARCHAR is INSTANT (no finding), a stored generated column needs a
    # copy (a finding no rule guessed); the type change and the foreign key copy, as guessed.
    found = {finding.operation: finding for finding in asked.findings}
    assert sorted(found) == [
        "alter_column probe_a.x type BigInteger() (was Integer())",
        "create_foreign_key fk_probe_a_x on probe_a",
        "execute 'ALTER TABLE probe_a ADD COLUMN g INTEGER GENERATED ALWAYS AS (x + 1) STORED'",
    ]
    for finding in found.values():
        assert "runs as ALGORITHM=COPY: blocks writes (not reads)" in finding.message
        assert "(MariaDB's answer, asked on an empty copy)" in finding.message
    assert found[sorted(found)[2]].rule == "blocking-alter"
    # The index on z, a column added by the same revision, was asked on the copy that has it.
    assert not any("ix_probe_a_z" in finding.operation for finding in asked.findings)
    with sa.create_engine(server).connect() as connection:  # no scratch database left
        names = connection.exec_driver_sql("SHOW DATABASES").scalars().all()
    assert not [name for name in names if f"_lint_{os.getpid()}_" in name]


PK = 'sa.Column("id", sa.Integer(), nullable=False), sa.PrimaryKeyConstraint("id", name="pk_probe_{}")'
ORDER = 'sa.Column("customer_id", sa.Integer()), sa.Column("total", sa.Integer()), sa.Column("note", sa.String(50))'
CODE = 'sa.Column("code", sa.String(20))'
SAFE_TABLES = f"""op.create_table("probe_c", {PK.format("c")})
op.create_table("probe_o", {PK.format("o")}, {ORDER}, {CODE})
op.create_table("probe_k", sa.Column("id", sa.Integer(), nullable=False))"""
KEY = "pk_probe_k"
UNIQUE = "uq_probe_o_code"
FK = '"fk_probe_o_customer_id_probe_c", "probe_o", "probe_c", ["customer_id"], ["id"]'
BATCH_FK = '"fk_probe_o_customer_id_probe_c", "probe_c", ["customer_id"], ["id"]'
CK = 'op.f("ck_probe_o_total_not_null"), "probe_o", "total IS NOT NULL"'
STATUS = 'op.add_column("probe_o", sa.Column("status", sa.String(20), nullable=False, server_default="new"))'
NOT_NULL = 'op.alter_column("probe_o", "total", nullable=False, existing_type=sa.Integer())'
BACK_TO_NULL = 'op.alter_column("probe_o", "total", nullable=True, existing_type=sa.Integer())'
NOTE = 'op.add_column("probe_o", sa.Column("note", sa.String(50)))'
WRITES = "# deploy-ok: writes-null -- every running version writes total since the release of s2"
DROPS = "# deploy-ok: drop-column -- no running version reads note since the release of s2"
# The expand/contract history each database's safe ways make: (upgrade, downgrade) per revision.
SAFE_WAYS = {
    "postgresql": [
        (
            "with op.get_context().autocommit_block():\n"
            '    op.create_index("ix_probe_o_customer_id", "probe_o", ["customer_id"], postgresql_concurrently=True)\n'
            f"op.create_foreign_key({FK}, postgresql_not_valid=True)\n"
            f"op.create_check_constraint({CK}, postgresql_not_valid=True)\n{STATUS}\n"
            "with op.get_context().autocommit_block():\n"
            f'    op.create_index("{UNIQUE}", "probe_o", ["code"], unique=True, postgresql_concurrently=True)\n'
            f'op.execute("ALTER TABLE probe_o ADD CONSTRAINT {UNIQUE} UNIQUE USING INDEX {UNIQUE}")\n'
            "with op.get_context().autocommit_block():\n"
            f'    op.create_index("{KEY}", "probe_k", ["id"], unique=True, postgresql_concurrently=True)\n'
            f'op.execute("ALTER TABLE probe_k ADD CONSTRAINT {KEY} PRIMARY KEY USING INDEX {KEY}")',
            f'op.drop_constraint("{KEY}", "probe_k", type_="primary")\n'
            f'op.drop_constraint("{UNIQUE}", "probe_o", type_="unique")\n'
            'op.drop_column("probe_o", "status")\n'
            'op.drop_constraint(op.f("ck_probe_o_total_not_null"), "probe_o", type_="check")\n'
            'op.drop_constraint("fk_probe_o_customer_id_probe_c", "probe_o", type_="foreignkey")\n'
            "with op.get_context().autocommit_block():\n"
            '    op.drop_index("ix_probe_o_customer_id", table_name="probe_o", postgresql_concurrently=True)',
        ),
        (
            'op.execute("ALTER TABLE probe_o VALIDATE CONSTRAINT fk_probe_o_customer_id_probe_c")\n'
            'op.execute("ALTER TABLE probe_o VALIDATE CONSTRAINT ck_probe_o_total_not_null")',
            'op.drop_constraint(op.f("ck_probe_o_total_not_null"), "probe_o", type_="check")\n'
            f"op.create_check_constraint({CK}, postgresql_not_valid=True)\n"
            'op.drop_constraint("fk_probe_o_customer_id_probe_c", "probe_o", type_="foreignkey")\n'
            f"op.create_foreign_key({FK}, postgresql_not_valid=True)",
        ),
        (
            f"{WRITES}\n{NOT_NULL}\n"
            'op.drop_constraint(op.f("ck_probe_o_total_not_null"), "probe_o", type_="check")\n'
            f'{DROPS}\nop.drop_column("probe_o", "note")',
            f"{NOTE}\nop.create_check_constraint({CK})\n{BACK_TO_NULL}",
        ),
    ],
    "mysql": [
        (
            'op.create_index("ix_probe_o_customer_id", "probe_o", ["customer_id"])\n'
            'op.execute("SET foreign_key_checks = 0")\n'
            f"op.create_foreign_key({FK})\n"
            'op.execute("SET foreign_key_checks = 1")\n'
            f'{STATUS}\nop.create_unique_constraint("{UNIQUE}", "probe_o", ["code"])\n'
            f'op.create_primary_key("{KEY}", "probe_k", ["id"])',
            f'op.drop_constraint("{KEY}", "probe_k", type_="primary")\n'
            f'op.drop_constraint("{UNIQUE}", "probe_o", type_="unique")\n'
            'op.drop_column("probe_o", "status")\n'
            'op.drop_constraint("fk_probe_o_customer_id_probe_c", "probe_o", type_="foreignkey")\n'
            'op.drop_index("ix_probe_o_customer_id", table_name="probe_o")',
        ),
        (f"{WRITES}\n{NOT_NULL}", BACK_TO_NULL),
        (f'{DROPS}\nop.drop_column("probe_o", "note")', NOTE),
    ],
    "sqlite": [
        (
            'op.create_index("ix_probe_o_customer_id", "probe_o", ["customer_id"])\n'
            'with op.batch_alter_table("probe_o") as batch:\n'
            f"    batch.create_foreign_key({BATCH_FK})\n"
            f'    batch.create_unique_constraint("{UNIQUE}", ["code"])\n'
            f'with op.batch_alter_table("probe_k") as batch:\n    batch.create_primary_key("{KEY}", ["id"])\n'
            f"{STATUS}",
            'with op.batch_alter_table("probe_o") as batch:\n'
            '    batch.drop_column("status")\n'
            f'    batch.drop_constraint("{UNIQUE}", type_="unique")\n'
            '    batch.drop_constraint("fk_probe_o_customer_id_probe_c", type_="foreignkey")\n'
            'op.drop_index("ix_probe_o_customer_id", table_name="probe_o")\n'
            f'with op.batch_alter_table("probe_k", recreate="always") as batch:\n'
            f'    batch.drop_constraint("{KEY}", type_="primary")',
        ),
        (
            f'{WRITES}\nwith op.batch_alter_table("probe_o") as batch:\n'
            '    batch.alter_column("total", nullable=False, existing_type=sa.Integer())',
            'with op.batch_alter_table("probe_o") as batch:\n'
            '    batch.alter_column("total", nullable=True, existing_type=sa.Integer())',
        ),
        (
            f'{DROPS}\nwith op.batch_alter_table("probe_o") as batch:\n    batch.drop_column("note")',
            'with op.batch_alter_table("probe_o") as batch:\n    batch.add_column(sa.Column("note", sa.String(50)))',
        ),
    ],
}
SAFE_MODELS = """

class ProbeC(Base):
    __tablename__ = "probe_c"

    id: Mapped[int] = mapped_column(primary_key=True)


class ProbeO(Base):
    __tablename__ = "probe_o"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("probe_c.id"), index=True)
    total: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), server_default="new")
    code: Mapped[str | None] = mapped_column(String(20), unique=True)


class ProbeK(Base):
    __tablename__ = "probe_k"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
"""


def test_the_safe_ways_it_recommends_pass_the_migration_suite_and_the_lint(project_copy, server, dialect, tmp_path):
    """An expand/contract history written the way the lint recommends on this database (what
    stays is acknowledged with its reason): the whole baked suite passes, the deploy test too."""
    versions = project_copy / "migrations" / "versions"
    (versions / "probe_s1.py").write_text(
        revision_source(
            "s1", HEAD, SAFE_TABLES, 'op.drop_table("probe_k")\nop.drop_table("probe_o")\nop.drop_table("probe_c")'
        )
    )
    for number, (upgrade, downgrade) in enumerate(SAFE_WAYS[dialect], start=2):
        # s2's backfill of the column it adds, as script.py.mako says: outside the ALTER's transaction
        fill = 'with op.get_context().autocommit_block():\n    op.execute("UPDATE probe_o SET total = 0")'
        source = revision_source(
            f"s{number}", f"s{number - 1}", upgrade, downgrade, data_upgrades=fill if number == 2 else "pass"
        )
        (versions / f"probe_s{number}.py").write_text(source)
    package = next(project_copy.glob("*/models.py")).parent
    models = package / "models.py"
    source = models.read_text().replace(
        "from sqlalchemy import MetaData, String", "from sqlalchemy import ForeignKey, MetaData, String"
    )
    models.write_text(source + SAFE_MODELS)
    shutil.copytree(PROJECT / "tests", project_copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    outcomes = run_suite(project_copy, server.render_as_string(hide_password=False), tmp_path)
    assert outcomes and all(failure is None for failure in outcomes.values()), {
        name: failure for name, failure in outcomes.items() if failure
    }
    config = project_config(project_copy)
    script = load_script(config)
    report = deploy_lint.lint(
        config,
        deploy_lint.revisions_in(script, f"{HEAD}:heads"),
        deploy_lint.dialect_of(server),
        script,
        ask=server if dialect == "mysql" else None,
    )
    assert sorted((finding.revision, finding.rule) for finding in report.findings) == sorted(
        [("s3" if dialect != "postgresql" else "s4", "writes-null"), ("s4", "drop-column")]
    ), report.text()
    assert not report.open and not report.notes, report.text()
