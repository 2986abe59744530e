"""The pre-generation hook: bad answers get one ERROR line, exit 1, and nothing on disk."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEMPLATE

spec = importlib.util.spec_from_file_location("pre_gen_project", TEMPLATE / "hooks" / "pre_gen_project.py")
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)

GOOD = {
    "project_name": "My Project",
    "project_slug": "my-project",
    "package_name": "my_project",
    "database": "sqlite",
    "target_metadata": "my_project.models:metadata",
}


@pytest.mark.parametrize(
    "answer",
    [
        {"project_slug": "shop"},
        {"project_slug": "shop-api-2"},
        {"package_name": "shop_core", "target_metadata": "shop_core.models:metadata"},
        {"database": "postgresql"},
        {"database": "mysql"},
        {"target_metadata": "my_project.models:Base"},
        {"target_metadata": "my_project.models:Base.metadata"},
    ],
)
def test_good_answers_pass(answer):
    assert hook.errors({**GOOD, **answer}) == []


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"project_name": "  "}, "project_name is empty"),
        ({"project_name": 'The "Best" Shop'}, "may not contain double quotes"),
        ({"project_name": "Back\\slash"}, "may not contain double quotes"),
        ({"project_slug": "my project"}, "not a valid folder name"),
        ({"project_slug": "my/project"}, "not a valid folder name"),
        ({"project_slug": "My-Project"}, "not a valid folder name"),
        ({"package_name": "1shop"}, "not a Python identifier"),
        ({"package_name": "my-project"}, "not a Python identifier"),
        ({"package_name": "class"}, "is a Python keyword"),
        ({"package_name": "migrations"}, "would shadow"),
        ({"package_name": "json"}, "would shadow"),
        ({"database": "oracle"}, "not supported"),
        ({"target_metadata": "my_project.models"}, "not in the models this template renders"),
        ({"target_metadata": "my_project.models:"}, "not in the models this template renders"),
        ({"target_metadata": "my project:metadata"}, "not in the models this template renders"),
        ({"target_metadata": "class.models:metadata"}, "not in the models this template renders"),
        ({"target_metadata": "models:metadata"}, "not in the models this template renders"),
    ],
)
def test_bad_answers_are_named(answer, message):
    errors = hook.errors({**GOOD, **answer})
    assert len(errors) == 1 and message in errors[0]


def test_target_metadata_outside_the_rendered_models_is_refused_with_the_way_to_use_it():
    # It baked, then create_db.py failed: "cannot import 'shop.db'".
    [error] = hook.errors({**GOOD, "target_metadata": "shop.db:Base.metadata"})
    assert "'my_project.models:metadata' or 'my_project.models:Base' or 'my_project.models:Base.metadata'" in error
    assert "point target_metadata in alembic.ini at your own module" in error


def test_every_prompt_reads_as_a_question():
    prompts = json.loads((TEMPLATE / "cookiecutter.json").read_text())["__prompts__"]
    texts = [value["__prompt__"] if isinstance(value, dict) else value for value in prompts.values()]
    assert all(text.endswith("?") and "{" not in text for text in texts), texts


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("project_name=", "ERROR: project_name is empty"),
        ("project_slug=my project", "ERROR: project_slug 'my project' is not a valid folder name"),
        ("project_slug=a/b", "ERROR: project_slug 'a/b' is not a valid folder name"),
        ("package_name=class", "ERROR: package_name 'class' is a Python keyword"),
        ("target_metadata=shop.db:Base.metadata", "ERROR: target_metadata 'shop.db:Base.metadata' is not in the"),
        ("database=oracle", "oracle provided for choice variable database"),  # cookiecutter's own check
    ],
)
def test_baking_with_a_bad_answer_fails_and_leaves_nothing(tmp_path: Path, option, message):
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(out), str(TEMPLATE), option],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert message in result.stderr + result.stdout
    assert list(out.iterdir()) == []
