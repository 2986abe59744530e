"""Long histories (migrations/squash.py, picture.py, heads.py), run as a user runs them
(``python -m migrations.cli ...`` and ``alembic`` in a copy of the project):

- a squash builds, at R, the schema and rows the old history built there, on each database:
  the example history squashed in the middle (a later revision refers to a squashed one's
  view), a history with a merge point, an irreversible revision, views, functions and
  triggers, an enum, a non-native enum's CHECK, a UNIQUE on the primary key, a sequence, a
  comment and data steps, and 300 revisions with churn; the later
  revisions run unchanged, the migration suite passes on the squashed history;
- it refuses, writing nothing, when the database stands before R;
- two branches that each add a revision conflict in git on migrations/head.txt, and
  check_branches names both heads and the merge command that joins them;
- the picture shows branch and merge points, irreversible and data-step revisions, and
  where a database stands, without its password.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import textwrap
from pathlib import Path

from sqlalchemy import URL, MetaData, inspect, select, text

from migrations.settings import run_on_connection
from migrations.testing.schema import snapshot
from proofs.helpers import PROJECT, alembic_cli, run_in_project

REVISION = '''\
"""{message}"""

import sqlalchemy as sa
from alembic import op

from migrations.conditional import data_enabled
from migrations.replaceable import ReplaceableObject

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None
irreversible = {irreversible!r}
{objects}

def upgrade():
    schema_upgrades()
    if data_enabled():
        data_upgrades()


def downgrade():
    if data_enabled():
        data_downgrades()
    schema_downgrades()


def schema_upgrades():
{up}


def schema_downgrades():
{down_body}


def data_upgrades():
{data_up}


def data_downgrades():
{data_down}
'''


def write_revision(
    project: Path,
    revision: str,
    down: str | tuple[str, ...] | None,
    up: str,
    down_body: str,
    *,
    data_up: str = "pass",
    data_down: str = "pass",
    objects: str = "",
    irreversible: str | None = None,
    message: str | None = None,
) -> None:
    def body(code: str) -> str:
        return textwrap.indent(textwrap.dedent(code).strip() or "pass", "    ")

    source = REVISION.format(
        message=message or f"revision {revision}",
        revision=revision,
        down=down,
        irreversible=irreversible,
        objects=textwrap.dedent(objects),
        up=body(up),
        down_body=body(down_body),
        data_up=body(data_up),
        data_down=body(data_down),
    )
    (project / "migrations" / "versions" / f"{revision}_rev.py").write_text(source, encoding="utf-8")


def without_history(project: Path) -> None:
    for path in (project / "migrations" / "versions").glob("*.py"):
        path.unlink()


def cli(url: URL, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_in_project(url, "-m", "migrations.cli", *args, cwd=project)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def said(result: subprocess.CompletedProcess[str]) -> str:
    """A command's last line (the post-write hooks speak before it)."""
    return ok(result).strip().splitlines()[-1]


def state(url: URL) -> tuple[dict, dict[str, list]]:
    """The schema picture the migration suite compares, and every table's rows in key order."""

    def read(connection):
        picture = snapshot(connection)
        metadata = MetaData()
        names = [name for name in inspect(connection).get_table_names() if name != "alembic_version"]
        metadata.reflect(connection, only=names)
        rows = {}
        for table in metadata.tables.values():
            order = list(table.primary_key.columns) or list(table.columns)
            rows[table.name] = [tuple(row) for row in connection.execute(select(table).order_by(*order))]
        return picture, rows

    return run_on_connection(url, read)


def files(project: Path) -> dict[str, str]:
    folder = project / "migrations"
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def scratch_databases(url: URL) -> set[str]:
    """The scratch databases a squash configured with ``url`` made on its server (none on
    SQLite): they are named after its database."""
    if url.get_backend_name() == "sqlite":
        return set()
    from migrations.settings import server_url

    def names(connection):
        if connection.dialect.name == "postgresql":
            query = "SELECT datname FROM pg_database WHERE datname LIKE :pattern"
        else:
            query = "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :pattern"
        return {
            row[0]
            for row in connection.execute(
                text(query), {"pattern": url.database[:32].replace("_", "\\_") + "\\_squash\\_%"}
            )
        }

    return run_on_connection(server_url(url), names)


# --- A history that meets every case ---------------------------------------------------------


def write_history_with_everything(project: Path, dialect: str) -> None:
    """r1 -> (r2a, r2b) -> r3 (merge) -> r4 (irreversible) -> r5 (data steps, function,
    trigger) -> r6, which replaces r2b's view by reference."""
    without_history(project)
    sequence = unsequence = ""  # a sequence of its own, where the database has them
    if dialect != "sqlite":
        sequence = '\nop.execute(sa.schema.CreateSequence(sa.Sequence("ticket_number", start=100, increment=5)))'
        unsequence = '\nop.execute(sa.schema.DropSequence(sa.Sequence("ticket_number")))'
    write_revision(
        project,
        "r1",
        None,
        textwrap.dedent("""
        status = op.create_table(
            "status",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("name", sa.String(20), nullable=False, unique=True),
            comment="what a person is doing",
        )
        op.bulk_insert(status, [{"id": 1, "name": "new"}, {"id": 2, "name": "done"}])
        """)
        + sequence,
        'op.drop_table("status")' + unsequence,
    )
    drop_enum = 'sa.Enum(name="mood").drop(op.get_bind())' if dialect == "postgresql" else ""
    write_revision(
        project,
        "r2a",
        "r1",
        """
        op.create_table(
            "person",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(50), nullable=False),
            sa.Column("mood", sa.Enum("happy", "sad", name="mood"), nullable=True),
            sa.Column("status_id", sa.Integer, sa.ForeignKey("status.id", name="fk_person_status"), nullable=True),
        )
        """,
        f"""
        op.drop_table("person")
        {drop_enum}
        """,
    )
    write_revision(
        project,
        "r2b",
        "r1",
        """
        op.create_table(
            "item",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("label", sa.String(30), nullable=False),
            sa.Column("price", sa.Numeric(10, 2), server_default="0", nullable=False),
            sa.Column("kind", sa.Enum("lamp", "desk", name="item_kind", native_enum=False, create_constraint=True)),
        )
        op.create_index("ix_item_label", "item", ["label"])
        op.create_view(item_view)
        """,
        """
        op.drop_view(item_view)
        op.drop_table("item")
        """,
        objects='item_view = ReplaceableObject("item_view", "SELECT id, label FROM item")\n',
    )
    write_revision(
        project,
        "r3",
        ("r2a", "r2b"),
        """
        with op.batch_alter_table("person") as batch:
            batch.add_column(sa.Column("item_id", sa.Integer, nullable=True))
            batch.create_foreign_key("fk_person_item", "item", ["item_id"], ["id"])
        with op.batch_alter_table("item") as batch:  # on the primary key's column (PostgreSQL keeps it)
            batch.create_unique_constraint("uq_item_id", ["id"])
        """,
        """
        with op.batch_alter_table("item") as batch:
            batch.drop_constraint("uq_item_id", type_="unique")
        with op.batch_alter_table("person") as batch:
            batch.drop_constraint("fk_person_item", type_="foreignkey")
            batch.drop_column("item_id")
        """,
        message="merge the person and item branches",
    )
    write_revision(
        project,
        "r4",
        "r3",
        'op.create_index("ix_person_name", "person", ["name"])',
        "raise NotImplementedError",
        irreversible="the index is part of a migration that cannot be undone",
    )
    objects, up, down = routines(dialect)
    write_revision(
        project,
        "r5",
        "r4",
        up,
        down,
        data_up="""
        op.execute("INSERT INTO item (id, label, price, kind) VALUES (7, 'lamp', 12.50, 'lamp')")
        op.execute("INSERT INTO person (id, name, mood, status_id, item_id) VALUES (1, 'Ada', 'happy', 1, 7)")
        """,
        data_down="""
        op.execute("DELETE FROM person WHERE id = 1")
        op.execute("DELETE FROM item WHERE id = 7")
        """,
        objects=objects,
    )
    write_revision(
        project,
        "r6",
        "r5",
        'op.replace_view(item_view, replaces="r2b.item_view")',
        'op.replace_view(item_view, replace_with="r2b.item_view")',
        objects='item_view = ReplaceableObject("item_view", "SELECT id, label, price FROM item")\n',
    )


def routines(dialect: str) -> tuple[str, str, str]:
    """A function and a trigger where the database has them (SQLite: a trigger only)."""
    if dialect == "postgresql":
        objects = """
        item_count = ReplaceableObject("item_count()", "RETURNS bigint AS $$ SELECT count(*) FROM item $$ LANGUAGE sql")
        shout = ReplaceableObject(
            "shout()",
            "RETURNS trigger AS $$ BEGIN NEW.label := upper(NEW.label); RETURN NEW; END $$ LANGUAGE plpgsql",
        )
        item_shout = ReplaceableObject("item_shout", "BEFORE INSERT ON item FOR EACH ROW EXECUTE FUNCTION shout()")
        """
        up = "op.create_sp(item_count)\nop.create_sp(shout)\nop.create_trigger(item_shout)"
        down = "op.drop_trigger(item_shout)\nop.drop_sp(shout)\nop.drop_sp(item_count)"
    elif dialect == "sqlite":
        objects = """
        item_shout = ReplaceableObject(
            "item_shout", "AFTER INSERT ON item BEGIN UPDATE item SET label = upper(label) WHERE id = NEW.id; END"
        )
        """
        up, down = "op.create_trigger(item_shout)", "op.drop_trigger(item_shout)"
    else:
        objects = """
        item_count = ReplaceableObject(
            "item_count", "() RETURNS BIGINT READS SQL DATA RETURN (SELECT COUNT(*) FROM item)"
        )
        item_shout = ReplaceableObject(
            "item_shout", "BEFORE INSERT ON item FOR EACH ROW SET NEW.label = UPPER(NEW.label)"
        )
        """
        up = "op.create_sp(item_count)\nop.create_trigger(item_shout)"
        down = "op.drop_trigger(item_shout)\nop.drop_sp(item_count)"
    return objects, up, down


# --- Squash -----------------------------------------------------------------------------------


def test_a_squash_builds_what_the_old_history_built_and_the_later_revisions_still_run(
    project_copy: Path, new_database, dialect: str
):
    write_history_with_everything(project_copy, dialect)
    old, old_with_data, live = new_database(), new_database(), new_database()
    ok(alembic_cli(old, "upgrade", "r5", cwd=project_copy))
    ok(alembic_cli(old_with_data, "-x", "data=true", "upgrade", "r5", cwd=project_copy))
    ok(alembic_cli(live, "upgrade", "r5", cwd=project_copy))  # a database at R: squashing is allowed
    before = state(old)
    before_with_data = state(old_with_data)
    assert before_with_data[1]["person"] == [(1, "Ada", "happy", 1, 7)], "the data steps inserted nothing"
    scratch = scratch_databases(live)

    line = said(cli(live, project_copy, "squash", "r5"))

    assert line.startswith("6 revisions squashed into"), line
    versions = sorted(path.name for path in (project_copy / "migrations" / "versions").glob("*.py"))
    assert versions == ["r5_rev.py", "r6_rev.py"]
    moved = sorted(path.name for path in (project_copy / "migrations" / "squashed" / "r5").glob("*.py"))
    assert moved == ["r1_rev.py", "r2a_rev.py", "r2b_rev.py", "r3_rev.py", "r4_rev.py", "r5_rev.py"]
    assert scratch_databases(live) == scratch, "a scratch database was left behind"
    squashed = (project_copy / "migrations" / "versions" / "r5_rev.py").read_text(encoding="utf-8")
    assert "down_revision: str | Sequence[str] | None = None" in squashed
    assert "'r2b'" in squashed or '"r2b"' in squashed, "squashes does not list r2b"

    new, new_with_data = new_database(), new_database()
    ok(alembic_cli(new, "upgrade", "r5", cwd=project_copy))
    ok(alembic_cli(new_with_data, "-x", "data=true", "upgrade", "r5", cwd=project_copy))
    assert state(new) == before
    assert state(new_with_data) == before_with_data
    # The later revision runs unchanged, on a database that stood at R before the squash
    # and on a new one; its reference to r2b's view is found in the squashed revision.
    for url in (live, new):
        ok(alembic_cli(url, "upgrade", "head", cwd=project_copy))
        ok(alembic_cli(url, "downgrade", "r5", cwd=project_copy))
        assert state(url)[0] == before[0]
    ok(alembic_cli(new, "downgrade", "base", cwd=project_copy))  # the squashed downgrade drops all it made
    picture = state(new)[0]
    assert not picture["tables"] and not picture.get("views"), picture
    # The stairway passes on the squashed history (its models are the example's: the
    # models == head checks are for the example history's squash, below).
    suite = run_suite(new, project_copy, "-k", "downgrade_undoes")
    assert suite.returncode == 0, suite.stdout[-3000:]


def test_a_squash_of_the_example_history_keeps_the_whole_suite_passing(project_copy: Path, new_database, dialect: str):
    live = new_database()
    ok(alembic_cli(live, "upgrade", "191a2d20b025", cwd=project_copy))
    line = said(cli(live, project_copy, "squash", "191a2d20b025"))
    assert line.startswith("3 revisions squashed into"), line
    assert ok(cli(live, project_copy, "check_branches")).startswith("One head, 199028bf9856")
    ok(alembic_cli(live, "upgrade", "head", cwd=project_copy))  # replaces="28af9800143f.customer_view"
    ok(alembic_cli(live, "check", cwd=project_copy))
    suite = run_suite(live, project_copy)
    assert suite.returncode == 0, suite.stdout[-3000:]
    assert " passed" in suite.stdout and "skipped" not in suite.stdout.split("\n")[-2], suite.stdout[-500:]


def test_a_squash_refuses_a_database_that_stands_before_it_and_writes_nothing(project_copy: Path, new_database):
    live = new_database()
    ok(alembic_cli(live, "upgrade", "28af9800143f", cwd=project_copy))
    before = files(project_copy)
    scratch = scratch_databases(live)
    result = cli(live, project_copy, "squash", "191a2d20b025")
    assert result.returncode != 0
    [line] = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert "stands at 28af9800143f, before 191a2d20b025" in line and "alembic upgrade 191a2d20b025" in line, line
    assert files(project_copy) == before
    assert scratch_databases(live) == scratch


def test_a_squash_that_does_not_build_the_same_schema_puts_the_old_files_back(project_copy: Path, new_database):
    # A script.py.mako that loses the operations (a project's own, edited by hand): the
    # squashed revision builds nothing, the check on a scratch database says so.
    without_history(project_copy)
    write_revision(
        project_copy,
        "a1",
        None,
        'op.create_table("alpha", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("alpha")',
    )
    write_revision(
        project_copy,
        "a2",
        "a1",
        'op.create_table("beta", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("beta")',
    )
    mako = project_copy / "migrations" / "script.py.mako"
    mako.write_text(mako.read_text(encoding="utf-8").replace('${upgrades if upgrades else "pass"}', "pass"))
    live = new_database()
    before = files(project_copy)
    result = cli(live, project_copy, "squash", "a2")
    assert result.returncode != 0
    [said] = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("FAILED")]
    assert "does not build what the old history built, so the old files are back" in said, said
    assert "alpha" in said and "only in the old" in said, said  # the squashed revision ran, and made nothing
    assert files(project_copy) == before
    assert scratch_databases(live) == set()


def test_a_squash_of_300_revisions_with_churn_builds_the_same_schema_and_the_suite_passes(
    project_copy: Path, new_database
):
    without_history(project_copy)
    down = None
    models: dict[str, list[str]] = {}  # table -> its columns, as the models declare them
    for number in range(1, 301):
        models[f"t{number:03d}"] = ['Column("id", Integer, primary_key=True)', 'Column("v", Integer)']
        revision = f"c{number:03d}"
        columns = 'sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.Integer)'
        up = f'op.create_table("t{number:03d}", {columns})'
        back = f'op.drop_table("t{number:03d}")'
        if number % 3 == 0:  # churn: a column and an index on an earlier table
            earlier = f"t{number - 2:03d}"
            up += f'\nop.add_column("{earlier}", sa.Column("c{number}", sa.String(20)))'
            up += f'\nop.create_index("ix_{earlier}_c{number}", "{earlier}", ["c{number}"])'
            models[earlier].append(f'Column("c{number}", String(20), index=True)')
            back = (
                f'op.drop_index("ix_{earlier}_c{number}", table_name="{earlier}")\n'
                f'with op.batch_alter_table("{earlier}") as batch:\n    batch.drop_column("c{number}")\n' + back
            )
        write_revision(project_copy, revision, down, up, back)
        down = revision
    old = new_database()
    ok(alembic_cli(old, "upgrade", "head", cwd=project_copy))
    before = state(old)
    line = said(cli(new_database(), project_copy, "squash", "head"))
    assert line.startswith("300 revisions squashed into"), line
    new = new_database()
    ok(alembic_cli(new, "upgrade", "head", cwd=project_copy))
    assert state(new) == before
    # The whole migration suite on the squashed history: one head, the stairway, models ==
    # head and create_db.py == upgrade head, with models that match it.
    write_models(project_copy, models)
    suite = run_suite(new, project_copy)
    assert suite.returncode == 0 and " passed" in suite.stdout, suite.stdout[-3000:]


def write_models(project: Path, tables: dict[str, list[str]]) -> None:
    """Models that declare these tables, on a MetaData with the rendered models' naming
    convention (the one the revisions ran with), where alembic.ini's target_metadata looks."""
    from migrations.testing.fixtures import project_config

    module = project_config().get_alembic_option("target_metadata").split(":")[0]
    source = [
        '"""The tables of the synthetic history (written by the proof)."""',
        "",
        "from sqlalchemy import Column, Integer, MetaData, String, Table",
        "",
        "from migrations.declared import declare_replaceable_objects",
        f"from {module}_convention import NAMING_CONVENTION",
        "",
        "metadata = declare_replaceable_objects(MetaData(naming_convention=NAMING_CONVENTION))",
    ]
    for table, columns in tables.items():
        source.append(f'Table("{table}", metadata, {", ".join(columns)})')
    path = project.joinpath(*module.split("."))
    rendered = path.with_suffix(".py").read_text(encoding="utf-8")
    start = rendered.index("NAMING_CONVENTION = {")
    convention = rendered[start : rendered.index("}", start) + 1]
    path.with_name(path.name + "_convention.py").write_text(convention + "\n", encoding="utf-8")
    path.with_suffix(".py").write_text("\n".join(source) + "\n", encoding="utf-8")


def run_suite(url: URL, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The baked migration suite (tests/test_migrations.py) in the copy, on its server."""
    if not (project / "tests").exists():
        shutil.copytree(PROJECT / "tests", project / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    command = ["-m", "pytest", "tests/test_migrations.py", "-q", "-p", "no:cacheprovider", "-rs", *args]
    return run_in_project(url, *command, cwd=project)


# --- Branches and the picture ------------------------------------------------------------------


def git(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"]
    return subprocess.run([*command, *args], cwd=project, capture_output=True, text=True)


def test_two_branches_that_each_add_a_revision_conflict_in_git_and_the_check_names_both(
    project_copy: Path, database_url: URL
):
    assert ok(cli(database_url, project_copy, "check_branches")).startswith("One head, 199028bf9856")
    assert git(project_copy, "init", "-q").returncode == 0
    git(project_copy, "add", "-A")
    git(project_copy, "commit", "-qm", "base")
    heads = {}
    for branch in ("one", "two"):
        git(project_copy, "checkout", "-q", "-b", branch, "main")
        ok(alembic_cli(database_url, "revision", "-m", f"add {branch}", cwd=project_copy))
        [head] = [line.split()[0] for line in (project_copy / "migrations" / "head.txt").read_text().splitlines()[-1:]]
        heads[branch] = head
        git(project_copy, "add", "-A")
        git(project_copy, "commit", "-qm", branch)
    assert heads["one"] != heads["two"]
    git(project_copy, "checkout", "-q", "main")
    assert git(project_copy, "merge", "-q", "one").returncode == 0
    merged = git(project_copy, "merge", "two")
    assert merged.returncode != 0 and "CONFLICT" in merged.stdout and "migrations/head.txt" in merged.stdout
    result = cli(database_url, project_copy, "check_branches")
    assert result.returncode != 0
    [line] = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    one, two = sorted(heads.values())
    assert f"{one} (" in line and f"{two} (" in line and "from 199028bf9856" in line, line
    assert f'alembic merge -m "merge {one} and {two}" {one} {two}' in line, line
    ok(alembic_cli(database_url, "merge", "-m", f"merge {one} and {two}", one, two, cwd=project_copy))
    assert ok(cli(database_url, project_copy, "check_branches")).startswith("One head, ")
    assert not any(marker in (project_copy / "migrations" / "head.txt").read_text() for marker in ("<<<", ">>>"))


def test_the_picture_shows_branches_merges_irreversible_and_data_revisions_and_where_a_database_stands(
    project_copy: Path, new_database, dialect: str
):
    write_history_with_everything(project_copy, dialect)
    standing = new_database()
    if dialect == "postgresql":  # trust authentication: a password that must not be shown
        standing = standing.set(password="s3cret-word")
    ok(alembic_cli(standing, "upgrade", "r2a", cwd=project_copy))
    shown = standing.render_as_string(hide_password=True)

    text = ok(cli(standing, project_copy, "picture", "--database"))
    lines = {}  # revision -> its line: "| *  r2b revision r2b  [...]"
    for line in text.splitlines():
        words = [word for word in line.split() if word not in ("|", "/", "\\")]
        if words and words[0] == "*":
            lines[words[1]] = line
    assert "[head]" in lines["r6"]
    assert "merge point of r2a, r2b" in lines["r3"]
    assert "branch point" in lines["r1"]
    assert "irreversible: the index is part of a migration that cannot be undone" in lines["r4"]
    assert "data steps" in lines["r5"]
    # only r5: a data_upgrades() that is only `pass` (no docstring) is no data step
    assert [revision for revision, line in lines.items() if "data steps" in line] == ["r5"]
    assert f"<- {shown}" in lines["r2a"]

    mermaid = ok(cli(standing, project_copy, "picture", "--mermaid", "--url", standing.render_as_string(False)))
    assert mermaid.startswith("```mermaid\nflowchart TD\n") and mermaid.rstrip().endswith("```")
    assert "    rr2a --> rr3" in mermaid and "    rr2b --> rr3" in mermaid and "    rr1 --> rr2a" in mermaid
    assert 'rr3{{"r3 merge the person and item branches' in mermaid
    assert "class rr4 irreversible" in mermaid and "class rr5 data" in mermaid
    assert "db0 -.-> rr2a" in mermaid
    assert "s3cret-word" not in text + mermaid
