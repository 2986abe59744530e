"""Property-based tests of the prompts: any answers bake a working project or stop with one ERROR line.

Hypothesis makes project names, slugs, package names and metadata paths (any Unicode,
control characters, template markers, dependency, standard-library and project names,
very long strings). Baked through cookiecutter's Python API, each set of answers either
renders a project whose files parse, that passes its own ruff settings and that runs
``python -m alembic heads`` and ``python create_db.py --sql`` from its folder, or stops
with one ``ERROR: ...`` line and nothing on disk (no project folder, no replay file).

CI runs the small ``ci`` profile (the same examples every run); for many more, new each
time: ``HYPOTHESIS_PROFILE=long python -m pytest tests/test_fuzz_prompts.py``. What the
fuzzing found is pinned by named regression tests in tests/test_hooks.py.
"""

from __future__ import annotations

import ast
import configparser
import os
import re
import subprocess
import sys
import tomllib
import unicodedata
from pathlib import Path

import yaml
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from tests.conftest import TEMPLATE
from tests.test_hooks import DEPENDENCIES, hook

# No explain phase: it re-runs failing examples for minutes. CI does not shrink either: its
# examples are fixed, and a failure prints the example as found.
settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=500,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FIELDS = ("project_name", "project_slug", "package_name", "target_metadata")
MARKERS = ["{{", "{%", "{#", "}}", "%}", "#}", "{{ cookiecutter.project_name }}", "{% if x %}", "${{ github.sha }}"]
any_text = st.text(max_size=40)
odd_characters = st.characters(categories=["Cc", "Cs", "Cf", "Zl", "Zp", "Zs", "Co", "Cn"])
shadowing = st.one_of(st.sampled_from(DEPENDENCIES), st.sampled_from(sorted(sys.stdlib_module_names)))

# Answers a user might well give: most bake.
PLAUSIBLE = {
    "project_name": st.one_of(
        st.from_regex(r"[A-Z][a-z]{0,11}( [A-Za-z0-9'éøß北-]{1,10}){0,4}", fullmatch=True),
        st.text(st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), min_size=1, max_size=30),
    ),
    "project_slug": st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9]{0,14}(-[a-z0-9]{1,8}){0,3}", fullmatch=True)),
    "package_name": st.one_of(st.none(), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)),
}
# Answers that try the checks: most are refused.
WILD = {
    "project_name": st.one_of(
        any_text,
        st.lists(st.one_of(st.characters(), odd_characters), min_size=1, max_size=12).map("".join),
        st.lists(st.one_of(st.sampled_from(MARKERS), any_text), min_size=1, max_size=4).map("".join),
        st.text(min_size=45, max_size=320),
    ),
    "project_slug": st.one_of(
        shadowing.map(lambda name: name.replace("_", "-")),
        st.lists(st.from_regex(r"[a-z][a-z0-9]{4,8}", fullmatch=True), min_size=10, max_size=40).map("-".join),
        any_text,
    ),
    "package_name": st.one_of(
        shadowing,
        st.sampled_from(["migrations", "tests", "create_db", "Migrations", "TESTS", "__main__", "class", "match"]),
        st.sampled_from(["_", "con", "Nul"]),
        st.text(alphabet="abcdefghij_", min_size=55, max_size=300),
        any_text,
    ),
    "target_metadata": st.one_of(
        st.sampled_from(["shop.db:Base.metadata", "models:metadata", "app.models:metadata"]), any_text
    ),
}
CONFIGS = ["alembic.ini", "pyproject.toml"]  # a choice, like database: where the settings live
OWN_METADATA = ["{}.models:metadata", "{}.models:Base", "{}.models:Base.metadata", "{}.models:Base.meta"]


@st.composite
def answers(draw) -> dict[str, str]:
    """Answers as a user would type them, one or two of them wild; a missing one keeps its derived default."""
    wild = draw(st.one_of(st.just(frozenset()), st.frozensets(st.sampled_from(FIELDS), min_size=1, max_size=2)))
    typed = {field: draw(WILD[field] if field in wild else PLAUSIBLE[field]) for field in FIELDS[:3]}
    typed["database"] = draw(st.sampled_from(hook.DATABASES))
    typed["config"] = draw(st.sampled_from(CONFIGS))
    package = typed["package_name"]
    own = st.sampled_from(OWN_METADATA).map(lambda path: path.format(package)) if package else st.nothing()
    typed["target_metadata"] = draw(WILD["target_metadata"] if "target_metadata" in wild else st.one_of(st.none(), own))
    return {key: value for key, value in typed.items() if value is not None}


def literal(value: str) -> str:
    """A typed answer: cookiecutter renders extra_context values as templates, a typed answer it keeps."""
    return "{% raw %}" + value + "{% endraw %}"


def bake(tmp: Path, typed: dict[str, str]) -> tuple[Path | None, str | None]:
    """Bake through the Python API: (project folder, None), or (None, the line the command line would print)."""
    config = tmp / "config.yaml"
    config.write_text(f"cookiecutters_dir: {tmp / 'cookiecutters'}\nreplay_dir: {tmp / 'replay'}\n")
    context = {key: value if key in ("database", "config") else literal(value) for key, value in typed.items()}
    try:
        project = cookiecutter(
            str(TEMPLATE), no_input=True, extra_context=context, output_dir=str(tmp / "out"), config_file=str(config)
        )
    except FailedHookException as error:  # what cookiecutter's command line prints, then exits 1
        return None, str(error)
    return Path(project), None


def run_in(project: Path, *commands: list[str]) -> list[subprocess.CompletedProcess]:
    """Run commands side by side in the project folder, as a user would, with nothing installed."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    started = [
        subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for command in commands
    ]
    outputs = [process.communicate(timeout=300) for process in started]
    return [
        subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        for process, (stdout, stderr) in zip(started, outputs, strict=True)
    ]


def assert_project_works(project: Path, typed: dict[str, str]) -> None:
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string((project / "alembic.ini").read_text(encoding="utf-8"))
    yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
    for path in project.rglob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    package, *_ = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["only-include"]
    assert pyproject["project"]["name"] == project.name == typed.get("project_slug", project.name)
    assert package == typed.get("package_name", package)
    settings = pyproject["tool"]["alembic"] if typed["config"] == "pyproject.toml" else ini["alembic"]
    assert settings["target_metadata"] == typed.get("target_metadata", f"{package}.models:metadata")
    assert ("alembic" in pyproject["tool"]) != ("target_metadata" in ini["alembic"])
    init = ast.parse((project / package / "__init__.py").read_text(encoding="utf-8"))
    assert ast.get_docstring(init, clean=False) == typed["project_name"] + "."

    python = sys.executable
    heads, sql, lint, formatting = run_in(
        project,
        [python, "-m", "alembic", "heads"],
        [python, "create_db.py", "--sql"],
        # Where the answers land; the rest of the lint is tests/test_render.py's.
        [python, "-m", "ruff", "check", "--quiet", "--select", "E501", "."],
        [python, "-m", "ruff", "format", "--check", "--quiet", f"{package}/__init__.py", "migrations/env.py"],
    )
    assert heads.returncode == 0 and "(head)" in heads.stdout, heads.stderr
    assert sql.returncode == 0 and "CREATE TABLE customer" in sql.stdout, sql.stderr
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert formatting.returncode == 0, formatting.stdout + formatting.stderr


@PROFILE
@given(typed=answers())
def test_any_answers_bake_a_working_project_or_stop_with_one_error_line(tmp_path_factory, typed):
    tmp = tmp_path_factory.mktemp("fuzz")
    project, printed = bake(tmp, typed)
    if project is None:
        event(f"refused: {printed.split()[1]}")
        assert printed.startswith("ERROR: ") and len(printed.splitlines()) == 1, printed
        assert not (tmp / "out").exists() or list((tmp / "out").iterdir()) == []
        assert not (tmp / "replay").exists()
    else:
        event("baked")
        assert_project_works(project, typed)


@settings(PROFILE, max_examples=PROFILE.max_examples * 10)
@given(typed=st.fixed_dictionaries({field: st.one_of(PLAUSIBLE[field], WILD[field]) for field in FIELDS[:3]}))
def test_the_checks_refuse_in_one_line_and_accept_only_sound_names(typed):
    name, slug, package = typed["project_name"], typed["project_slug"] or "my-project", typed["package_name"] or "my_p"
    own_metadata = [f"{package}.models:metadata", f"{package}.models:Base", f"{package}.models:Base.metadata"]
    for metadata in [*own_metadata, "shop.db:Base.metadata", f"{package}.models:Base.meta"]:
        answered = {**typed, "project_slug": slug, "package_name": package, "target_metadata": metadata}
        found = hook.errors({**answered, "database": "sqlite", "config": "alembic.ini"})
        for message in found:
            assert len(message.splitlines()) == 1 and message.isprintable(), repr(message)
        if not found:
            assert name.splitlines() == [name] and name == name.strip() and 0 < len(name) <= 50
            assert not any(unicodedata.category(character) in ("Cc", "Cs") for character in name)
            assert not any(marker in name for marker in ("{{", "{%", "{#", '"', "\\"))
            assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", slug) and len(slug) <= 63
            assert package.isidentifier() and package.isascii() and len(package) <= 63
            assert package not in DEPENDENCIES and package not in sys.stdlib_module_names
            assert package.lower() not in ("migrations", "tests", "create_db")
            assert metadata in own_metadata
