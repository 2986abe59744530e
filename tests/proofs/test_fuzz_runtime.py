"""Fuzzing the runtime inputs (Hypothesis): DATABASE_URL, create_db.py --url, TEST_DATABASE_URL
and -x arguments. Whatever is given: a URL that works, or one line, a non-zero exit, no
traceback, and no part of a password anywhere in what is printed.

Passwords are drawn from capitals, digits and the characters that break URLs, and every
other part of a URL is lowercase, so four capitals or digits of the password in a row in
the output is a leak. ``HYPOTHESIS_PROFILE=long`` runs many more examples.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from alembic.util import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrations.settings import database_url, make_engine
from migrations.testing.fixtures import project_config
from proofs.helpers import PROJECT

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
FIXTURES = [HealthCheck.function_scoped_fixture]  # the fixtures here give each example what it needs
FAST = settings(max_examples=5000 if LONG else 150, deadline=None, database=None, suppress_health_check=FIXTURES)
SLOW = settings(max_examples=60 if LONG else 4, deadline=None, database=None, suppress_health_check=FIXTURES)

# Runs of four or more capitals and digits, between the characters that break URLs.
RUN = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=4, max_size=6)
PASSWORD = st.lists(st.one_of(RUN, st.sampled_from(list("@:/#?%&=+!$'[] "))), min_size=1, max_size=6).map("".join)
SCHEMES = st.sampled_from(["postgresql+psycopg", "mysql+pymysql", "postgresql", "mariadb+pymysql", "sqlite"])
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


@st.composite
def urls(draw) -> tuple[str, str]:
    """A URL as a user might write it, its password not quoted: (url, password)."""
    password = draw(PASSWORD)
    scheme = draw(SCHEMES)
    # The server's own port: a MariaDB URL on PostgreSQL's port would wait for a greeting that
    # never comes (PyMySQL reads it without a timeout) until PostgreSQL drops it, a minute on.
    server = ":3306" if "mysql" in scheme or "mariadb" in scheme else ":5432"
    port = draw(st.sampled_from(["", ":1", server, ":99999999", ":abc"]))
    url = f"{scheme}://{draw(WORD)}:{password}@127.0.0.1{port}/{draw(WORD)}"
    return url, password


def leaked(output: str, password: str) -> list[str]:
    """Runs of four or more of the password's capitals and digits that the output shows."""
    return [run for run in re.findall(r"[A-Z0-9]{4,}", password) if run in output]


def one_line_without(output: str, password: str) -> None:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert "Traceback" not in output
    assert not leaked(output, password), (leaked(output, password), output)


@given(given_url=urls())
@FAST
def test_a_database_url_parses_as_meant_or_is_one_line_that_shows_no_password(monkeypatch, given_url):
    url, password = given_url
    monkeypatch.setenv("DATABASE_URL", url)
    try:
        parsed = database_url(project_config())
    except CommandError as error:
        one_line_without(str(error), password)
        return
    shown = parsed.render_as_string(hide_password=True)
    assert not leaked(shown, password), (shown, url)
    try:
        make_engine(parsed).dispose()
    except CommandError as error:  # a driver that is not installed
        one_line_without(str(error), password)


def run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    env["DATABASE_URL"] = url
    return subprocess.run([sys.executable, *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)


@given(given_url=urls())
@SLOW
def test_the_alembic_command_and_create_db_say_one_line_on_any_url(given_url):
    url, password = given_url
    upgrade = run("-m", "alembic", "upgrade", "head", url=url)
    assert upgrade.returncode != 0
    one_line_without(upgrade.stdout, password)
    assert not leaked(upgrade.stderr, password)
    built = run("create_db.py", "--url", url, url="")
    assert built.returncode == 1
    one_line_without(built.stderr, password)
    assert not leaked(built.stdout, password)


@given(given_url=urls())
@SLOW
def test_the_project_tests_fail_in_one_line_on_a_bad_test_database_url(given_url, tmp_path_factory):
    url, password = given_url
    env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "CI")}
    env["TEST_DATABASE_URL"] = url.replace(":5432", ":1").replace(":3306", ":1")  # nothing listens there
    test = Path(PROJECT / "tests" / "test_recipes.py")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(test), "-q", "-x", "-p", "no:cacheprovider", "-k", "shared_connection"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert not leaked(result.stdout + result.stderr, password), result.stdout


# Anything but an option (argparse takes "-..." for one) or a NUL (no argv can hold it).
X_ARGUMENT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"))


@given(argument=X_ARGUMENT.filter(lambda text: not text.startswith("-")))
@SLOW
def test_any_x_argument_runs_or_fails_in_one_line_before_any_ddl(argument, tmp_path_factory):
    database = tmp_path_factory.mktemp("x") / "x.db"
    result = run("-m", "alembic", "-x", argument, "upgrade", "head", url=f"sqlite:///{database}")
    if result.returncode == 0:
        return
    one_line_without(result.stdout, "")
    if database.exists():
        with sqlite3.connect(database) as connection:
            assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_an_unquoted_at_in_the_password_shows_no_part_of_it():
    """Issue #14's case: u:***@WKVX@127.0.0.1... showed the password's tail as the host."""
    url = "postgresql+psycopg://u:ZQX7@WKVX@127.0.0.1:5432/db"
    result = run("-m", "alembic", "upgrade", "head", url=url)
    assert result.returncode != 0
    one_line_without(result.stdout, "ZQX7@WKVX")
    assert "WKVX" not in result.stdout + result.stderr
    assert "urllib.parse.quote(password, safe='')" in result.stdout


def test_a_test_database_url_that_does_not_parse_shows_no_part_of_the_password():
    """Issue #14's case: the tests let make_url's "invalid literal for int() ... 'YVQJ'" through."""
    env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "CI")}
    env["TEST_DATABASE_URL"] = "postgresql+psycopg://u:ZQX7:YVQJ@127.0.0.1:YVQJ/db"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_recipes.py", "-q", "-p", "no:cacheprovider", "-k", "shared"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "TEST_DATABASE_URL is not a valid SQLAlchemy URL" in result.stdout
    assert "YVQJ" not in result.stdout + result.stderr and "ZQX7" not in result.stdout + result.stderr
