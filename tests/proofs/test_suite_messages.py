"""A failing migration suite reads as one message per test: which side is which, every
difference (schema and rows) in one run, and no traceback of the suite's own code.

The history adds a table with a reference row that only its revision inserts; the models add
two tables no revision makes. Then models == head lists both differences, and create_db ==
upgrade head lists both tables and the empty reference table, in one message each.
"""

from __future__ import annotations

import shutil

from proofs.helpers import PROJECT
from proofs.test_stairway import HEAD, revision_source
from proofs.test_walk import run_suite

REFERENCE = (
    'op.create_table("kind_probe", sa.Column("id", sa.Integer(), nullable=False),'
    ' sa.PrimaryKeyConstraint("id", name="pk_kind_probe"))\n'
    'op.execute("INSERT INTO kind_probe (id) VALUES (1)")'
)
MODELS = """

class KindProbe(Base):
    __tablename__ = "kind_probe"

    id: Mapped[int] = mapped_column(primary_key=True)


class DriftA(Base):
    __tablename__ = "drift_a"

    id: Mapped[int] = mapped_column(primary_key=True)


class DriftB(Base):
    __tablename__ = "drift_b"

    id: Mapped[int] = mapped_column(primary_key=True)
"""


def test_each_failing_check_is_one_message_naming_every_difference_and_its_side(project_copy, server, tmp_path):
    (project_copy / "migrations" / "versions" / "probe_0.py").write_text(
        revision_source("s1", HEAD, REFERENCE, 'op.drop_table("kind_probe")')
    )
    models = next(project_copy.glob("*/models.py"))
    source = models.read_text()
    if "Mapped, mapped_column" not in source:
        raise AssertionError("the models no longer import Mapped and mapped_column")
    models.write_text(source + MODELS)
    shutil.copytree(PROJECT / "tests", project_copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    outcomes = run_suite(project_copy, server.render_as_string(hide_password=False), tmp_path)
    failures = {name: said for name, said in outcomes.items() if said is not None}
    assert sorted(failures) == [
        "test_create_db_builds_what_upgrade_head_builds",
        "test_the_models_match_the_schema_at_head",
    ]
    models_said = failures["test_the_models_match_the_schema_at_head"]
    assert "the models differ from the schema upgrade head builds (2 differences" in models_said, models_said
    assert "add_table: table drift_a" in models_said and "add_table: table drift_b" in models_said, models_said
    built_said = failures["test_create_db_builds_what_upgrade_head_builds"]
    assert "what upgrade head built -> what create_db.py built" in built_said, built_said
    for line in ("table drift_a: only create_db.py built it", "table drift_b: only create_db.py built it"):
        assert line in built_said, built_said
    assert "leaves rows in kind_probe (1 rows), which create_db.py leaves empty" in built_said, built_said
    for said in failures.values():  # the message alone: no source lines of the suite, no traceback
        assert "Traceback" not in said and "def test_" not in said and "assert " not in said, said
