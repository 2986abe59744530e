"""The answer checks: a bad answer is one ERROR line, exit 1, and nothing on disk.

The checks live in hooks/pre_gen_project.py; cookiecutter runs them in its own process as
it finishes the answers (cookiecutter.json's ``__check_answers``) and again as the
pre-generation hook. The command line is tested under the installed cookiecutter and
under 2.6.0, installed by the tests into a throwaway environment.
"""

from __future__ import annotations

import importlib.util
import json
import os
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
VERSION_2_6 = "2.6.0"


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


# The command line, under two cookiecutter versions.


@pytest.fixture(scope="session")
def cookiecutter_2_6(tmp_path_factory) -> Path:
    """An environment with cookiecutter 2.6.0 (pip of this interpreter installs into it)."""
    venv = tmp_path_factory.mktemp("cookiecutter-2.6")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--disable-pip-version-check", "-q"]
        + [f"cookiecutter=={VERSION_2_6}"],
        capture_output=True,
        text=True,
    )
    if install.returncode != 0:
        reason = f"cannot install cookiecutter {VERSION_2_6}: {install.stderr.strip().splitlines()[-1:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return python


@pytest.fixture(params=["installed", VERSION_2_6], ids=lambda version: f"cookiecutter-{version}")
def cookiecutter_python(request) -> str:
    return sys.executable if request.param == "installed" else str(request.getfixturevalue("cookiecutter_2_6"))


def run_cookiecutter(python: str, tmp_path: Path, *options: str, typed: str | None = None):
    """cookiecutter from a neutral folder with its own config; returns (result, output folder, replay folder)."""
    out, replay = tmp_path / "out", tmp_path / "replay"
    out.mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(f"cookiecutters_dir: {tmp_path / 'cookiecutters'}\nreplay_dir: {replay}\n")
    command = [python, "-m", "cookiecutter", "--config-file", str(config), "-o", str(out), str(TEMPLATE), *options]
    if typed is None:
        command.insert(3, "--no-input")
    result = subprocess.run(command, input=typed, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    return result, out, replay


def assert_one_error_line_and_nothing_on_disk(baked, message: str) -> None:
    result, out, replay = baked
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert list(out.iterdir()) == [] and not replay.exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("project_name=", "ERROR: project_name is empty"),
        ("project_slug=my project", "ERROR: project_slug 'my project' is not a valid folder name"),
        ("project_slug=a/b", "ERROR: project_slug 'a/b' is not a valid folder name"),
        ("package_name=class", "ERROR: package_name 'class' is a Python keyword"),
        ("target_metadata=shop.db:Base.metadata", "ERROR: target_metadata 'shop.db:Base.metadata' is not in the"),
    ],
)
def test_baking_with_a_bad_answer_prints_one_error_line_and_leaves_nothing(
    cookiecutter_python, tmp_path, option, message
):
    assert_one_error_line_and_nothing_on_disk(run_cookiecutter(cookiecutter_python, tmp_path, option), message)


def test_the_hook_refuses_what_the_prompt_check_would_when_it_is_skipped(tmp_path):
    # --replay skips the answers' rendering, so only the pre-generation hook sees them.
    replay = tmp_path / "replay"
    replay.mkdir()
    answers = {**GOOD, "package_name": "class", "_template": str(TEMPLATE), "__check_answers": "yes"}
    (replay / "answers.json").write_text(json.dumps({"cookiecutter": answers}))
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--replay-file",
            str(replay / "answers.json"),
            "-o",
            str(out),
            str(TEMPLATE),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["ERROR: package_name 'class' is a Python keyword: choose another name."]
    assert list(out.iterdir()) == []


def test_an_unknown_database_is_refused_by_cookiecutter_itself(tmp_path):
    # cookiecutter checks choices before any of ours run, and says so with its own traceback.
    result, out, _ = run_cookiecutter(sys.executable, tmp_path, "database=oracle")
    assert result.returncode == 1
    assert "oracle provided for choice variable database" in result.stderr
    assert list(out.iterdir()) == []
