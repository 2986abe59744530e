"""What baking renders: clean, parseable, lint-free, deterministic, and a working revision template."""

from __future__ import annotations

import configparser
import filecmp
import tomllib

import pytest
from alembic.config import Config

COMBINATIONS = [
    pytest.param({}, id="defaults-sqlite"),
    pytest.param({"project_name": "Shop Backend", "database": "postgresql"}, id="postgresql"),
    pytest.param({"project_name": "Café O'Brien", "database": "mysql"}, id="mysql-accented-name"),
    pytest.param(
        {"project_name": "Billing", "package_name": "billing_core", "target_metadata": "billing_core.models:Base"},
        id="custom-package-declarative-base",
    ),
    pytest.param({"project_name": "Toml App", "config": "pyproject.toml"}, id="pyproject-sqlite"),
    pytest.param(
        {"project_name": "Toml Shop", "database": "postgresql", "config": "pyproject.toml", "package_name": "shop"},
        id="pyproject-postgresql-custom-package",
    ),
]
# Where each config choice keeps Alembic's settings and ours (alembic.ini keeps the URL either way).
SETTINGS = (
    "script_location",
    "file_template",
    "prepend_sys_path",
    "target_metadata",
    "migration_lock_timeout",
    "ddl_lock_timeout",
)
JINJA_MARKERS = ("{{", "}}", "{%", "%}", "{#", "#}")


@pytest.mark.parametrize("options", COMBINATIONS)
def test_no_template_syntax_is_left_in_any_file(bake, options):
    project = bake(**options)
    leftovers = [
        f"{path.relative_to(project.path)}: {marker}"
        for path in project.files()
        for marker in JINJA_MARKERS
        if marker in path.read_text()
    ]
    assert leftovers == []


@pytest.mark.parametrize("options", COMBINATIONS)
def test_config_files_parse_and_say_what_was_chosen(bake, options):
    project = bake(**options)
    pyproject = tomllib.loads(project.read("pyproject.toml"))
    ini = Config(str(project.path / "alembic.ini"), toml_file=str(project.path / "pyproject.toml"))
    package = options.get("package_name", project.path.name.replace("-", "_"))
    assert pyproject["project"]["name"] == project.path.name
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["only-include"] == [package, "migrations", "create_db.py"]
    assert ini.get_alembic_option("target_metadata") == options.get("target_metadata", f"{package}.models:metadata")
    assert ini.get_alembic_option("migration_lock_timeout") == "60"
    assert ini.get_alembic_option("ddl_lock_timeout") == "10"
    in_toml = options.get("config") == "pyproject.toml"
    toml_settings = pyproject["tool"].get("alembic", {})
    for setting in SETTINGS:
        assert (setting in toml_settings) == in_toml, setting
        assert ini.file_config.has_option("alembic", setting) != in_toml, setting
    assert ini.file_config.has_section("post_write_hooks") != in_toml
    assert [hook["name"] for hook in toml_settings.get("post_write_hooks", [])] == (["ruff", "head"] if in_toml else [])
    url = ini.get_main_option("sqlalchemy.url")
    database = options.get("database", "sqlite")
    driver = {"sqlite": "sqlite://", "postgresql": "postgresql+psycopg://", "mysql": "mysql+pymysql://"}[database]
    assert url.startswith(driver)
    dependencies = " ".join(pyproject["project"]["dependencies"])
    assert ("psycopg" in dependencies) == (database == "postgresql")
    assert ("pymysql" in dependencies) == (database == "mysql")
    configparser.ConfigParser(interpolation=None).read_string(project.read("alembic.ini"))


@pytest.mark.parametrize("options", COMBINATIONS)
def test_rendered_python_passes_ruff(bake, options):
    project = bake(**options)
    lint = project.run("python", "-m", "ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatting = project.run("python", "-m", "ruff", "format", "--check", ".")
    assert formatting.returncode == 0, formatting.stdout + formatting.stderr


def test_rendering_is_deterministic(bake):
    first, second = bake(project_name="Same"), bake(project_name="Same")
    names = [path.relative_to(first.path) for path in first.files()]
    assert names == [path.relative_to(second.path) for path in second.files()]
    _, mismatch, errors = filecmp.cmpfiles(first.path, second.path, [str(name) for name in names], shallow=False)
    assert mismatch == [] and errors == []


def test_alembic_revision_writes_an_importable_revision_from_our_template(bake):
    project = bake()
    result = project.run("python", "-m", "alembic", "revision", "-m", "add things")
    assert result.returncode == 0, result.stderr
    [written] = [path for path in (project.path / "migrations" / "versions").glob("*add_things.py")]
    assert written.name[:8].isdigit()  # the date-prefixed file_template
    probe = (
        "import importlib.util, sys; sys.path.insert(0, '.');"
        f"spec = importlib.util.spec_from_file_location('rev', {str(written)!r});"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module);"
        "print(module.down_revision, *sorted(n for n in dir(module) if 'grade' in n))"
    )
    imported = project.run("python", "-c", probe)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == [
        "199028bf9856",
        "data_downgrades",
        "data_upgrades",
        "downgrade",
        "schema_downgrades",
        "schema_upgrades",
        "upgrade",
    ]
    formatted = project.run("python", "-m", "ruff", "format", "--check", str(written))
    assert formatted.returncode == 0, "the post-write hook should have formatted the new revision"
