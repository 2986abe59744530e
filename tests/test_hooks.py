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
    "config": "alembic.ini",
}
# What the rendered project imports, runs with, is built and rendered by (written out here,
# not taken from the hook): a package of one of these names would shadow it.
DEPENDENCIES = ["alembic", "sqlalchemy", "mako", "psycopg", "pymysql", "pytest", "cookiecutter", "ruff", "hatchling"]
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
        {"project_name": "Café O'Brien"},
        {"project_name": "北京 Shop {x}"},
        {"project_name": "x" * 50},
        {"project_slug": "a" * 63, "package_name": "b" * 63, "target_metadata": "b" * 63 + ".models:metadata"},
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
        ({"project_name": " Shop"}, "may not start or end with spaces"),
        ({"project_slug": "my project"}, "not a valid folder name"),
        ({"project_slug": "my/project"}, "not a valid folder name"),
        ({"project_slug": "My-Project"}, "not a valid folder name"),
        ({"project_slug": "con"}, "a device name on Windows"),
        ({"package_name": "1shop"}, "not a Python identifier"),
        ({"package_name": "my-project"}, "not a Python identifier"),
        ({"package_name": "class"}, "is a Python keyword"),
        ({"package_name": "migrations"}, "would clash with a file or folder"),
        ({"package_name": "Tests"}, "would clash with a file or folder"),
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


# Regression tests: each answer below baked a project that did not work, or crashed cookiecutter.


def test_target_metadata_outside_the_rendered_models_is_refused_with_the_way_to_use_it():
    # It baked, then create_db.py failed: "cannot import 'shop.db'".
    [error] = hook.errors({**GOOD, "target_metadata": "shop.db:Base.metadata"})
    assert "'my_project.models:metadata' or 'my_project.models:Base' or 'my_project.models:Base.metadata'" in error
    assert "point target_metadata in alembic.ini at your own module" in error


@pytest.mark.parametrize("package", [*DEPENDENCIES, "typing_extensions", "markupsafe"])
def test_package_names_that_shadow_a_dependency_are_refused(package):
    # mako and typing_extensions made `alembic heads` fail with an ImportError; the others
    # shadowed the driver, the tests' runner, the linter or the build backend.
    [error] = hook.errors({**GOOD, "package_name": package, "target_metadata": f"{package}.models:metadata"})
    assert f"package_name {package!r} would shadow the module of that name" in error


@pytest.mark.parametrize("package", ["json", "email", "logging", "__future__", "__main__"])
def test_package_names_that_shadow_the_standard_library_or_the_main_module_are_refused(package):
    # __main__ baked, then create_db.py failed: "'__main__' is not a package".
    [error] = hook.errors({**GOOD, "package_name": package, "target_metadata": f"{package}.models:metadata"})
    assert "would shadow" in error


@pytest.mark.parametrize("character", ["\x1b", "\x00", "\t", "\n", "\r", "\x7f", "\x80", "\x85", "\u2028", "\ufffe"])
def test_control_characters_in_the_project_name_are_refused(character):
    # \x1b made pyproject.toml invalid TOML; \x80 made .github/workflows/ci.yml invalid YAML.
    [error] = hook.errors({**GOOD, "project_name": f"My{character}Project"})
    assert "may not contain tabs, line breaks, control characters" in error


def test_a_project_name_wider_than_the_rendered_lines_allow_is_refused():
    # 53 characters made migrations/env.py's first line 121 columns: the baked project failed ruff.
    assert hook.errors({**GOOD, "project_name": "x" * 50}) == []
    [error] = hook.errors({**GOOD, "project_name": "::::::::A00000000000000000000000000000000000000000000"})
    assert "project_name is longer than 50 characters" in error
    [error] = hook.errors({**GOOD, "project_name": "北" * 26})  # two columns each
    assert "project_name is longer than 50 characters" in error


def test_a_package_name_longer_than_a_file_name_is_refused():
    # 256 underscores baked until the package folder: OSError, File name too long.
    package = "_" * 256
    [error] = hook.errors({**GOOD, "package_name": package, "target_metadata": f"{package}.models:metadata"})
    assert "package_name is longer than 63 characters" in error


def test_typed_template_markers_are_refused():
    # Accepted, they broke re-rendering: cruft passes the stored answers back as templates.
    for name in ["{{ Shop }}", "{% if %}", "Shop {# x"]:
        [error] = hook.errors({**GOOD, "project_name": name})
        assert "may not contain template markers" in error


def test_a_name_whose_slug_would_be_too_long_bakes_with_the_slug_cut_to_length(bake):
    project = bake(project_name=" ".join(["北京大学"] * 5))  # 44 columns, a 79-character slug
    assert project.path.name == ("bei-jing-da-xue-" * 5)[: hook.MAX_NAME_LENGTH].rstrip("-")


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
        ("package_name=psycopg", "ERROR: package_name 'psycopg' would shadow the module of that name"),
        ("target_metadata=shop.db:Base.metadata", "ERROR: target_metadata 'shop.db:Base.metadata' is not in the"),
    ],
)
def test_baking_with_a_bad_answer_prints_one_error_line_and_leaves_nothing(
    cookiecutter_python, tmp_path, option, message
):
    assert_one_error_line_and_nothing_on_disk(run_cookiecutter(cookiecutter_python, tmp_path, option), message)


def test_a_300_character_project_name_is_one_error_line(cookiecutter_python, tmp_path):
    # Its slug made a folder name too long for the file system: OSError and a traceback.
    baked = run_cookiecutter(cookiecutter_python, tmp_path, "project_name=" + "a" * 300)
    assert_one_error_line_and_nothing_on_disk(baked, "ERROR: project_name is longer than 50 characters")


def test_a_300_character_slug_is_one_error_line(cookiecutter_python, tmp_path):
    # The same OSError, before any hook could run: the check must come before the folder.
    baked = run_cookiecutter(cookiecutter_python, tmp_path, "project_slug=" + "a" * 300)
    assert_one_error_line_and_nothing_on_disk(baked, "ERROR: project_slug is longer than 63 characters")


def test_a_typed_answer_with_template_markers_is_one_error_line(cookiecutter_python, tmp_path):
    result, out, replay = run_cookiecutter(cookiecutter_python, tmp_path, typed="{{ Shop }}\n\n\n\n\n\n")
    assert result.returncode == 1
    assert result.stderr == ""
    assert result.stdout.count("ERROR") == 1
    assert result.stdout.rstrip().endswith(
        "ERROR: project_name may not contain template markers ({ followed by {, % or #)."
    )
    assert list(out.iterdir()) == [] and not replay.exists()


def bake_from_replay(tmp_path: Path, **answers: str) -> tuple[subprocess.CompletedProcess, Path]:
    """cookiecutter --replay-file with GOOD's answers but ``answers``: (result, output folder).

    --replay skips the answers' rendering, so only the pre-generation hook sees them; a replay
    file (or an older template's answers) can also hold a value the prompt never offered."""
    replay = tmp_path / "replay"
    replay.mkdir()
    context = {**GOOD, **answers, "_template": str(TEMPLATE), "__check_answers": "yes"}
    (replay / "answers.json").write_text(json.dumps({"cookiecutter": context}))
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "cookiecutter", "--replay-file", str(replay / "answers.json"), "-o", str(out)]
    return subprocess.run([*command, str(TEMPLATE)], capture_output=True, text=True, cwd=tmp_path), out


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"package_name": "class"}, "ERROR: package_name 'class' is a Python keyword: choose another name."),
        (
            {"config": "setup.cfg"},
            "ERROR: config 'setup.cfg' is not supported: choose one of alembic.ini, pyproject.toml.",
        ),
    ],
)
def test_the_hook_refuses_what_the_prompt_check_would_when_it_is_skipped(tmp_path, answers, message):
    result, out = bake_from_replay(tmp_path, **answers)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [message]
    assert list(out.iterdir()) == []


def test_an_unknown_database_is_refused_by_cookiecutter_itself(tmp_path):
    # cookiecutter checks choices before any of ours run, and says so with its own traceback.
    result, out, _ = run_cookiecutter(sys.executable, tmp_path, "database=oracle")
    assert result.returncode == 1
    assert "oracle provided for choice variable database" in result.stderr
    assert list(out.iterdir()) == []
