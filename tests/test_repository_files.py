"""The files a real repository has: ``.gitignore``, ``.pre-commit-config.yaml`` and
``.github/workflows/ci.yml``, for each database.

The workflow is checked against GitHub's schema (check-jsonschema's copy, offline) and its
service against the URLs it sets; then its ``run:`` steps run here, in order, in a fresh
virtualenv, with the local server standing in for the service container. The pre-commit
config is validated by pre-commit itself, and its pre-commit-hooks hooks run on a fresh
bake (the ruff hooks: tests/test_render.py runs ruff on every bake). The .gitignore is
proven by ``git status`` after a real install, ``create_db.py`` and the project's tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from alembic.config import Config
from identify.identify import tags_from_path
from sqlalchemy import URL, create_engine, make_url
from sqlalchemy.exc import OperationalError

from tests.conftest import SERVERS, BakedProject

DATABASES = ["sqlite", "postgresql", "mysql"]
WORKFLOW = ".github/workflows/ci.yml"
PRE_COMMIT = ".pre-commit-config.yaml"
INSTALL = "python -m pip install -U pip && python -m pip install -e . --group dev"
# Set up what the runner has; here the checkout is the bake and the Python is a fresh venv.
SKIPPED_ACTIONS = {"actions/checkout", "actions/setup-python"}
# pre-commit-hooks' hooks as pre-commit runs them: the module and the file type they take.
PRE_COMMIT_HOOKS = {
    "check-yaml": ("pre_commit_hooks.check_yaml", "yaml"),
    "check-toml": ("pre_commit_hooks.check_toml", "toml"),
    "end-of-file-fixer": ("pre_commit_hooks.end_of_file_fixer", "text"),
    "trailing-whitespace": ("pre_commit_hooks.trailing_whitespace_fixer", "text"),
}


def load_yaml(project: BakedProject, relative: str) -> dict:
    return yaml.safe_load(project.read(relative))


def the_job(project: BakedProject) -> dict:
    [job] = load_yaml(project, WORKFLOW)["jobs"].values()
    return job


def service_url(service: dict, drivername: str) -> URL:
    """The database a service container offers the job, read from its definition."""
    env = service.get("env", {})
    [published] = [int(str(mapping).split(":")[0]) for mapping in service["ports"]]
    image = service["image"].split(":")[0]
    if image == "postgres":
        user, password = env.get("POSTGRES_USER", "postgres"), env.get("POSTGRES_PASSWORD")
        database = env.get("POSTGRES_DB", user)
        assert password or env.get("POSTGRES_HOST_AUTH_METHOD") == "trust", "postgres starts with neither"
    elif image == "mariadb":
        user, password, database = "root", env.get("MARIADB_ROOT_PASSWORD"), env.get("MARIADB_DATABASE")
        assert password or env.get("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD"), "mariadb starts with neither"
    else:
        raise AssertionError(f"no known service image: {service['image']}")
    return URL.create(drivername, user, password, "127.0.0.1", published, database)


def configured_driver(project: BakedProject) -> str:
    return make_url(Config(str(project.path / "alembic.ini")).get_main_option("sqlalchemy.url")).drivername


def local_server(database: str) -> URL:
    """The local server that stands in for the service: it fails under CI=true when down, else skips."""
    url = make_url(SERVERS[database])
    try:
        create_engine(url).connect().close()
    except OperationalError as error:
        reason = f"{database} server {url.render_as_string(hide_password=True)} is not reachable: {error.orig}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return url


def admin(server: URL, statement: str) -> None:
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(statement)
    engine.dispose()


def fresh_venv(folder: Path) -> dict[str, str]:
    """A new virtualenv, and an environment that finds its programs first and no others of ours."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True)
    ours = str(Path(sys.prefix) / "bin") if sys.prefix != sys.base_prefix else None
    path = [str(folder / "bin"), *(entry for entry in os.environ["PATH"].split(os.pathsep) if entry != ours)]
    # Neither a user's shell nor a GitHub runner has these (bytecode gets written, as there).
    unset = {"DATABASE_URL", "TEST_DATABASE_URL", "PYTHONDONTWRITEBYTECODE"}
    env = {key: value for key, value in os.environ.items() if key not in unset}
    return {**env, "PATH": os.pathsep.join(path), "VIRTUAL_ENV": str(folder), "CI": "true"}


def shown(result: subprocess.CompletedProcess) -> str:
    return f"`{result.args}` exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def git(project: BakedProject, *args: str) -> str:
    command = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args]
    return subprocess.run(command, cwd=project.path, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("database", DATABASES)
def test_workflow_is_valid_for_github(bake, database):
    project = bake(database=database)
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", WORKFLOW],
        cwd=project.path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, shown(result)


@pytest.mark.parametrize("database", DATABASES)
def test_workflow_runs_the_tests_then_the_deploy_checks_on_every_push_and_pull_request(bake, database):
    project = bake(database=database)
    workflow = load_yaml(project, WORKFLOW)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    steps = the_job(project)["steps"]
    assert [step["uses"].split("@")[0] for step in steps if "uses" in step] == sorted(SKIPPED_ACTIONS)
    assert [step["run"] for step in steps if "run" in step] == [
        INSTALL,
        "ruff check . && ruff format --check .",
        "python -m migrations.cli check_branches",
        "python -m migrations.cli lint",
        "pytest",
        "alembic upgrade head",
        "alembic check",
        "alembic current --check-heads",
    ]


@pytest.mark.parametrize("database", DATABASES)
def test_workflow_service_is_the_server_its_urls_name(bake, database):
    project = bake(database=database)
    job = the_job(project)
    if database == "sqlite":
        assert "services" not in job
        assert not {"DATABASE_URL", "TEST_DATABASE_URL"} & set(job.get("env", {}))  # alembic.ini's file
        return
    [service] = job["services"].values()
    assert "--health-cmd" in service["options"], "without a health check the steps start before the server"
    offered = service_url(service, configured_driver(project))
    assert make_url(job["env"]["DATABASE_URL"]) == offered
    assert make_url(job["env"]["TEST_DATABASE_URL"]).set(database=None) == offered.set(database=None)


@pytest.mark.parametrize("database", DATABASES)
def test_workflow_steps_pass_when_run_here(bake, database, tmp_path):
    server = None if database == "sqlite" else local_server(database)
    project = bake(project_name=f"CI {database}", database=database)
    job = the_job(project)
    env = {**fresh_venv(tmp_path / "venv"), **job.get("env", {})}
    scratch = f"ci_{uuid.uuid4().hex[:12]}"
    if server is not None:
        # As the service container would: an empty database, named here uniquely, on the local server.
        service_database = service_url(next(iter(job["services"].values())), "x").database
        for key in ("DATABASE_URL", "TEST_DATABASE_URL"):
            url = make_url(env[key])
            env[key] = url.set(
                host=server.host,
                port=server.port,
                username=server.username,
                password=server.password,
                database=scratch if url.database == service_database else url.database,
            ).render_as_string(hide_password=False)
        admin(server, f"CREATE DATABASE {scratch}")
    try:
        for step in job["steps"]:
            if "uses" in step:  # checkout and setup-python: the bake and the venv stand in for them
                assert step["uses"].split("@")[0] in SKIPPED_ACTIONS, f"cannot run {step['uses']} here"
                continue
            started = time.monotonic()
            result = subprocess.run(
                ["bash", "-e", "-c", step["run"]],  # GitHub's default shell on Linux
                cwd=project.path,
                env={**env, **step.get("env", {})},
                capture_output=True,
                text=True,
                timeout=600,
            )
            print(f"{database}: {step['run']!r} took {time.monotonic() - started:.1f} s")
            assert result.returncode == 0, f"step {step.get('name', step['run'])!r} failed:\n{shown(result)}"
    finally:
        if server is not None:
            force = " WITH (FORCE)" if database == "postgresql" else ""
            admin(server, f"DROP DATABASE IF EXISTS {scratch}{force}")


@pytest.mark.parametrize("database", DATABASES)
def test_pre_commit_config_is_valid_and_runs_ruff_check_with_fix_then_ruff_format(bake, database):
    project = bake(database=database)
    validated = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", PRE_COMMIT],
        cwd=project.path,
        capture_output=True,
        text=True,
    )
    assert validated.returncode == 0 and "warning" not in validated.stdout.lower(), shown(validated)
    [ruff] = [repo for repo in load_yaml(project, PRE_COMMIT)["repos"] if repo["repo"].endswith("/ruff-pre-commit")]
    assert re.fullmatch(r"v\d+\.\d+\.\d+", ruff["rev"]), ruff["rev"]
    assert [hook["id"] for hook in ruff["hooks"]] == ["ruff-check", "ruff-format"]
    assert "--fix" in ruff["hooks"][0]["args"]


def test_pre_commit_hooks_find_nothing_to_fix_in_a_fresh_bake(bake):
    project = bake(project_name="Café O'Brien", database="mysql")
    [repo] = [repo for repo in load_yaml(project, PRE_COMMIT)["repos"] if repo["repo"].endswith("/pre-commit-hooks")]
    assert repo["hooks"], "no pre-commit-hooks hooks to run"
    for hook in repo["hooks"]:
        module, kind = PRE_COMMIT_HOOKS[hook["id"]]
        files = [str(path) for path in project.files() if kind in tags_from_path(str(path))]
        assert files, f"{hook['id']} would check no file"
        result = subprocess.run([sys.executable, "-m", module, *files], capture_output=True, text=True)
        assert result.returncode == 0, f"{hook['id']} would change or reject files:\n{shown(result)}"


def test_gitignore_keeps_git_status_clean_after_install_create_db_tests_and_lint(bake):
    project = bake()
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "baked")
    env = fresh_venv(project.path / ".venv")
    for command in (
        INSTALL,
        "python create_db.py",
        "python -m pytest -q",
        "ruff check . && ruff format --check .",
    ):
        result = subprocess.run(
            ["bash", "-e", "-c", command], cwd=project.path, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, shown(result)
    ignored = git(project, "status", "--porcelain", "--ignored")
    package = project.path.name.replace("-", "_")
    for made in (".venv/", f"{package}.db", ".pytest_cache/", ".ruff_cache/", "__pycache__/"):
        assert made in ignored, f"{made} was not made, so this test proves nothing about it:\n{ignored}"
    assert git(project, "status", "--porcelain") == ""
