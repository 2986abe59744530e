"""Every tenant from one command, and new tenants at head (migrations/all_tenants.py):
``python -m migrations.cli upgrade_tenants`` upgrades the tenants not at head, in parallel,
one broken tenant neither stopping nor rolling back the others, with a summary naming it
and an exit status that says so; a rerun finishes it. ``create_tenant`` builds a tenant at
head (≡ upgrade head: ``alembic check`` agrees), refuses one that exists or a bad name, and
a build that fails leaves nothing. PostgreSQL (schemas) and MariaDB (databases)."""

from __future__ import annotations

import configparser
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.util import CommandError
from sqlalchemy import DDL, URL, event, text
from sqlalchemy.exc import OperationalError

from migrations.all_tenants import upgrade_tenants
from migrations.new_tenant import create_tenant
from migrations.settings import make_engine, target_metadata
from migrations.testing.fixtures import alembic_config_for
from proofs.helpers import PROJECT, alembic_cli, drop_database, run_in_project
from proofs.test_environments import add_audit_environment
from proofs.test_recipes_meet import tables_only
from proofs.test_stairway import HEAD, revision_source
from proofs.test_tenants import TABLES, make_tenant, tables_in, version_in
from proofs.test_walk import marked_irreversible, run_suite

FIRST = "3ab8b2dfb055"  # the example history's first revision: it creates the table customer


def exists(url: URL, name: str) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                sql = "SELECT count(*) FROM pg_namespace WHERE nspname = :name"
            else:
                sql = "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :name"
            return bool(connection.execute(text(sql), {"name": name}).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture
def names(database_url: URL, dialect: str) -> Iterator[list[str]]:
    """Three tenant names after the test's database; whatever of them a test made is dropped."""
    if dialect == "sqlite":
        pytest.skip("SQLite has no schemas: test_sqlite_refuses_in_one_line")
    found = [f"{database_url.database}_{suffix}" for suffix in ("a", "b", "c")]
    yield found
    if dialect != "postgresql":  # PostgreSQL's schemas go with the test's database
        for name in found:
            drop_database(database_url.set(database=name))


def upgrade_all(database_url: URL, *args: str):
    pattern = f"schemas:{database_url.database}_%"
    result = run_in_project(database_url, "-m", "migrations.cli", "upgrade_tenants", "--tenants", pattern, *args)
    return result, (result.stdout + result.stderr)


def test_every_tenant_from_one_command_one_broken_on_purpose(database_url: URL, names: list[str]):
    a, b, broken = names
    for name in names:
        make_tenant(database_url, name)
    with make_engine(database_url).begin() as connection:  # what the first revision creates: it fails there
        connection.exec_driver_sql(f"CREATE TABLE {broken}.customer (id INTEGER)")
    result, said = upgrade_all(database_url, "--jobs", "2")
    assert result.returncode != 0 and "Traceback" not in said, said
    assert "3 tenants in " in said and ": 2 upgraded, 1 failed." in said, said
    assert f"upgraded base -> {HEAD}: {a}, {b}" in said, said
    failed = [line for line in said.splitlines() if line.startswith(f"failed {broken} ")]
    assert len(failed) == 1 and f"(stays at base): revision {FIRST} (" in failed[0] and "customer" in failed[0]
    assert "FAILED: 1 of 3 tenants failed" in said
    assert version_in(database_url, a) == [HEAD] and version_in(database_url, b) == [HEAD]
    left = tables_in(database_url, broken)  # PostgreSQL rolled its run back; MariaDB keeps an empty version table
    assert left in (["customer"], ["alembic_version", "customer"]), left
    assert left == ["customer"] or version_in(database_url, broken) == []  # nothing of it was recorded

    with make_engine(database_url).begin() as connection:  # mended: the rerun finishes it, and only it
        connection.exec_driver_sql(f"DROP TABLE {broken}.customer")
    result, said = upgrade_all(database_url)
    assert result.returncode == 0 and ": 1 upgraded, 2 at head." in said, said
    assert f"upgraded base -> {HEAD}: {broken}" in said and version_in(database_url, broken) == [HEAD]
    result, said = upgrade_all(database_url)
    assert result.returncode == 0 and ": 3 at head." in said, said


def test_a_new_tenant_is_built_at_head_and_matches_the_history(database_url: URL, names: list[str]):
    a, b, _ = names
    said = create_tenant(alembic_config_for(database_url), a)
    assert said.startswith(f"Created tenant {a} on ") and f"at head {HEAD}" in said
    assert TABLES[1] in tables_in(database_url, a) and version_in(database_url, a) == [HEAD]
    check = alembic_cli(database_url, "-x", f"tenant={a}", "check")  # models ≡ the tenant built
    assert check.returncode == 0, check.stdout + check.stderr
    assert tables_in(database_url, None) == []  # nothing in the URL's own schema or database
    # An existing tenant is refused, changing nothing; so is a bad name, never spliced into SQL.
    with make_engine(database_url).begin() as connection:
        connection.execute(text(f"INSERT INTO {a}.customer (name) VALUES ('kept')"))
    with pytest.raises(CommandError, match=f"tenant '{a}' already exists"):
        create_tenant(alembic_config_for(database_url), a)
    with make_engine(database_url).connect() as connection:
        assert connection.execute(text(f"SELECT name FROM {a}.customer")).scalars().all() == ["kept"]
    for bad in ("a;b", 'x"y', "Acme", "x" * 200, a.upper()):
        with pytest.raises(CommandError, match="is not a tenant name") as raised:
            create_tenant(alembic_config_for(database_url), bad)
        assert "\n" not in str(raised.value)
    # A build that fails partway (a second CREATE TABLE customer, after the first) leaves nothing.
    table = target_metadata(alembic_config_for(database_url)).tables["customer"]
    clash = DDL("CREATE TABLE customer (id INTEGER)")
    event.listen(table, "after_create", clash)
    try:
        with pytest.raises(CommandError) as raised:
            create_tenant(alembic_config_for(database_url), b)
    finally:
        event.remove(table, "after_create", clash)
    assert "customer" in str(raised.value) and not exists(database_url, b)


def test_sql_one_script_for_all_or_one_file_each(database_url: URL, names: list[str], dialect: str, tmp_path: Path):
    """--sql starts each tenant where it stands and skips those at head; nothing is run."""
    a, b, _ = names
    create_tenant(alembic_config_for(database_url), a)
    make_tenant(database_url, b)
    result, said = upgrade_all(database_url, "--sql")
    switch = f'SET search_path TO "{b}";' if dialect == "postgresql" else f"USE `{b}`;"
    assert result.returncode == 0 and switch in result.stdout and f"-- tenant {b}" in result.stdout, said
    assert f"-- tenant {a}" not in result.stdout and "1 written, 1 at head." in result.stderr
    result, said = upgrade_all(database_url, "--sql-dir", str(tmp_path / "sql"))
    assert result.returncode == 0 and sorted(os.listdir(tmp_path / "sql")) == [f"{b}.sql"], said
    assert switch in (tmp_path / "sql" / f"{b}.sql").read_text()
    assert tables_in(database_url, b) == []  # written, not run


def test_tenants_listed_by_a_function_with_an_unknown_one(database_url: URL, names: list[str], capsys):
    """``--tenants module:function``; an unknown tenant is a failure of its own, in one line,
    unless creating was asked for (``--create``): then it is built at head."""
    a, b, _ = names
    make_tenant(database_url, a)
    config = alembic_config_for(database_url)
    config.attributes["listed"] = [a, b]
    report = upgrade_tenants(config, tenants="proofs.test_all_tenants:listed", jobs=1, progress=True)
    assert [(o.tenant, o.status) for o in report.outcomes] == [(a, "upgraded"), (b, "failed")]
    bar = capsys.readouterr().err  # what a terminal shows: one line, rewritten (the unknown one counted first)
    assert bar.endswith("] 2/2 tenants, 1 failed\n") and f"[{'#' * 15}{'.' * 15}] 1/2 tenants, 1 failed" in bar, bar
    assert report.outcomes[1].error.startswith("no such ") and "create_tenant" in report.outcomes[1].error
    assert version_in(database_url, a) == [HEAD] and not exists(database_url, b)
    report = upgrade_tenants(config, tenants="proofs.test_all_tenants:listed", jobs=1, progress=False, create=True)
    assert [(o.tenant, o.status) for o in report.outcomes] == [(a, "at head"), (b, "created")]
    assert version_in(database_url, b) == [HEAD] and TABLES[1] in tables_in(database_url, b)


def listed(config) -> list[str]:
    return config.attributes["listed"]


def test_sqlite_refuses_in_one_line(database_url: URL, dialect: str, tmp_path: Path):
    if dialect != "sqlite":
        pytest.skip("SQLite's refusal")
    never = database_url.set(database=str(tmp_path / "never.db"))
    for args in (["upgrade_tenants", "--tenants", "acme"], ["create_tenant", "acme"]):
        result = run_in_project(never, "-m", "migrations.cli", *args)
        said = (result.stdout + result.stderr).strip().splitlines()
        assert result.returncode != 0 and said == [said[-1]] and "SQLite has no schemas" in said[-1], said
    assert not (tmp_path / "never.db").exists()


def test_shared_tables_and_tenant_tables_are_two_histories(database_url: URL, names: list[str], project_copy: Path):
    """The README's way: the main history holds the shared tables (in the URL's own schema or
    database), a second environment (test_environments' [audit] history, here the tenants')
    the tables of every tenant; each history's version table lives with its tables."""
    a, b, _ = names
    add_audit_environment(project_copy)
    own = {"AUDIT_DATABASE_URL": database_url.render_as_string(hide_password=False)}

    def run(*args: str):
        result = run_in_project(database_url, *args, cwd=project_copy, **own)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    run("-m", "alembic", "upgrade", "head")  # the shared tables
    assert f"Created tenant {a} " in run("-m", "migrations.cli", "--name", "audit", "create_tenant", a)
    make_tenant(database_url, b)
    pattern = f"schemas:{database_url.database}_%"
    said = run("-m", "migrations.cli", "--name", "audit", "upgrade_tenants", "--tenants", pattern)
    assert ": 1 upgraded, 1 at head." in said and f"-> au1: {b}" in said, said
    assert tables_in(database_url, None) == TABLES  # shared: the main history's, and its version table
    for name in (a, b):
        assert tables_in(database_url, name) == ["alembic_version_audit", "audit_event"]
        run("-m", "alembic", "--name", "audit", "-x", f"tenant={name}", "check")
    run("-m", "alembic", "check")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def missing(what: str) -> None:
    reason = f"{what}: cannot start a second server"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def second_server(database_url: URL, dialect: str) -> Iterator[URL]:
    """A second server of the test's kind on another port of this machine, made for the test
    (PostgreSQL: initdb and pg_ctl; MariaDB: mariadb-install-db and mariadbd), removed after."""
    with another_server(database_url, dialect) as url:
        yield url


@contextmanager
def another_server(database_url: URL, dialect: str, *mariadbd_options: str) -> Iterator[URL]:
    """The server of ``second_server``; on MariaDB, ``mariadbd_options`` added to its command line."""
    if dialect == "sqlite":
        pytest.skip("SQLite has no servers")
    folder = Path(tempfile.mkdtemp(prefix="second-server-"))  # not under pytest's: the server's user enters it
    port, as_root = free_port(), os.geteuid() == 0
    owner = "postgres" if dialect == "postgresql" else "mysql"
    if as_root:  # the servers refuse to run as root: as their own user
        shutil.chown(folder, owner)

    def run(*command: str) -> None:
        prefix = ["runuser", "-u", owner, "--"] if as_root and dialect == "postgresql" else []
        result = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{' '.join(command)}: {result.stdout}{result.stderr}"

    url = database_url.set(host="127.0.0.1", port=port, username="postgres" if dialect == "postgresql" else "root")
    if dialect == "postgresql":
        initdb = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1:]), None)
        if initdb is None:
            missing("no initdb on PATH or in /usr/lib/postgresql/*/bin")
        pg_ctl, data = str(Path(initdb).resolve().parent / "pg_ctl"), folder / "data"
        run(initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
        try:
            yield url.set(database="postgres")
        finally:
            run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
            shutil.rmtree(folder, ignore_errors=True)
        return
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    mariadbd = shutil.which("mariadbd", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if install is None or mariadbd is None:
        missing("no mariadb-install-db or mariadbd")
    user = ["--user=mysql"] if as_root else []
    data = str(folder / "data")
    root = "--auth-root-authentication-method=normal"  # root, no password, as the test server's
    run(install, "--no-defaults", f"--datadir={data}", *user, root, "--skip-test-db")
    options = [f"--datadir={data}", f"--port={port}", "--bind-address=127.0.0.1", f"--socket={folder / 'sock'}"]
    options += ["--skip-log-bin", "--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=0", *user]
    options += mariadbd_options
    with open(folder / "log", "w") as log:
        server = subprocess.Popen([mariadbd, "--no-defaults", *options], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(120):  # up to 30 s to accept connections
            try:
                make_engine(url.set(database="mysql")).connect().close()
                break
            except OperationalError:
                assert server.poll() is None, (folder / "log").read_text()
                time.sleep(0.25)
        yield url.set(database="mysql")
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


# A revision after head that notes when it ran in the tenant, half a second long.
TIMED = {
    "postgresql": revision_source(
        "timed",
        HEAD,
        'op.execute("CREATE TABLE ran AS SELECT clock_timestamp() AS started")\n'
        'op.execute("SELECT pg_sleep(0.5)")\n'
        'op.execute("ALTER TABLE ran ADD COLUMN finished timestamptz DEFAULT clock_timestamp()")',
        'op.drop_table("ran")',
    ),
    "mysql": revision_source(
        "timed",
        HEAD,
        'op.execute("CREATE TABLE ran AS SELECT SYSDATE(6) AS started")\n'
        'op.execute("DO SLEEP(0.5)")\n'
        'op.execute("ALTER TABLE ran ADD COLUMN finished DATETIME(6)")\n'
        'op.execute("UPDATE ran SET finished = SYSDATE(6)")',
        'op.drop_table("ran")',
    ),
}


def test_tenants_over_two_servers_from_one_directory(
    database_url: URL, dialect: str, names: list[str], second_server: URL, project_copy: Path
):
    """A directory table maps each tenant to its server: two tenants on this server, two on a
    second server of the same kind, migrated by one command, at most one at a time per server."""
    (project_copy / "migrations" / "versions" / "timed.py").write_text(TIMED[dialect])
    postgresql = dialect == "postgresql"
    there = second_server.set(database=f"{database_url.database}_two") if postgresql else second_server
    if postgresql:
        admin = make_engine(second_server).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {there.database}")
        admin.dispose()
    a, b, c = names
    d = f"{database_url.database}_d"
    for url, pair in ((database_url, (a, b)), (there, (c, d))):
        for name in pair:
            make_tenant(url, name)
    with make_engine(database_url).begin() as connection:
        connection.exec_driver_sql("CREATE TABLE tenant_directory (name VARCHAR(64) PRIMARY KEY, url TEXT)")
        rows = [{"name": a, "url": None}, {"name": b, "url": None}]
        rows += [{"name": name, "url": there.render_as_string(hide_password=False)} for name in (c, d)]
        connection.execute(text("INSERT INTO tenant_directory VALUES (:name, :url)"), rows)
    arguments = ["upgrade_tenants", "--tenants", "query:SELECT name, url FROM tenant_directory"]
    result = run_in_project(
        database_url, "-m", "migrations.cli", *arguments, "--jobs", "4", "--per-server", "1", cwd=project_copy
    )
    said = result.stdout + result.stderr
    assert result.returncode == 0 and "4 tenants in " in said and ": 4 upgraded." in said, said
    for url, pair in ((database_url, (a, b)), (there, (c, d))):
        assert [version_in(url, name) for name in pair] == [["timed"], ["timed"]]
        with make_engine(url).connect() as connection:
            first, second = [connection.execute(text(f"SELECT started, finished FROM {n}.ran")).one() for n in pair]
        assert first[1] <= second[0] or second[1] <= first[0], (first, second)  # one at a time per server
    assert not exists(database_url, c) and not exists(there, a)  # each tenant on its own server


LEDGER_MODEL = """

class Ledger(Base):
    __tablename__ = "ledger"

    id: Mapped[int] = mapped_column(primary_key=True)
"""


def test_the_suite_in_a_tenant_names_a_revision_that_hard_codes_a_schema(
    project_copy: Path, server: URL, dialect: str, tmp_path: Path
):
    """``tenant_history = true``: the baked suite walks, checks and builds inside a tenant, with
    no false alarm on a sound history. On PostgreSQL a revision naming the schema "public",
    which the suite outside a tenant cannot tell from the default, is caught. (On MariaDB a
    tenant is the database the suite runs in already; a revision naming another database
    fails there in any case.)"""
    if dialect == "sqlite":
        pytest.skip("SQLite has no schemas")
    shutil.copytree(PROJECT / "tests", project_copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(project_copy / "alembic.ini")
    parser["alembic"]["tenant_history"] = "true"
    with (project_copy / "alembic.ini").open("w") as ini:
        parser.write(ini)
    url = server.render_as_string(hide_password=False)
    outcomes = run_suite(project_copy, url, tmp_path)
    assert all(said is None for said in outcomes.values()), outcomes  # a sound history: no false alarm
    if dialect != "postgresql":
        return
    create = 'op.create_table("ledger", sa.Column("id", sa.Integer(), primary_key=True), schema="public")'
    drop = 'op.drop_table("ledger", schema="public")'
    (project_copy / "migrations" / "versions" / "ledger.py").write_text(revision_source("ledger", HEAD, create, drop))
    models = next(project_copy.glob("*/models.py"))
    models.write_text(models.read_text() + LEDGER_MODEL)
    outcomes = run_suite(project_copy, url, tmp_path)
    said = outcomes["test_the_models_match_the_schema_at_head"]
    assert said is not None and "add_table: table ledger" in said and "ran in a tenant" in said, outcomes
    said = outcomes["test_create_db_builds_what_upgrade_head_builds"]
    assert said is not None and "ledger" in said and "ran in a tenant" in said, outcomes
    parser["alembic"]["tenant_history"] = "false"  # outside a tenant, the same history passes: "public" is the default
    with (project_copy / "alembic.ini").open("w") as ini:
        parser.write(ini)
    outcomes = run_suite(project_copy, url, tmp_path)
    assert all(said is None for said in outcomes.values()), outcomes


KILLER = revision_source(
    "killer",
    HEAD,
    "if os.environ.get('KILL_IN_TENANT') == op.get_context().config.attributes.get('tenant'):\n"
    "    os.kill(os.getpid(), signal.SIGKILL)  # the worker process dies under this tenant\n"
    'op.create_table("after_kill", sa.Column("id", sa.Integer(), primary_key=True))',
    'op.drop_table("after_kill")',
)


def test_a_worker_killed_under_one_tenant_stops_no_other(database_url: URL, names: list[str], project_copy: Path):
    """The process migrating one tenant is killed (out of memory, a kill -9): the other
    tenants are still upgraded, none of them disturbed; that one is named, exit status 1."""
    a, b, c = names
    source = KILLER.replace("import sqlalchemy as sa\n", "import os\nimport signal\n\nimport sqlalchemy as sa\n", 1)
    (project_copy / "migrations" / "versions" / "killer.py").write_text(source)
    for name in names:
        make_tenant(database_url, name)
    pattern = f"schemas:{database_url.database}_%"
    arguments = ["-m", "migrations.cli", "upgrade_tenants", "--tenants", pattern, "--jobs", "2"]
    result = run_in_project(database_url, *arguments, cwd=project_copy, KILL_IN_TENANT=b)
    said = result.stdout + result.stderr
    assert result.returncode != 0 and ": 2 upgraded, 1 failed." in said, said
    assert f"failed {b} " in said and "its worker process died (exit code -9) while migrating it" in said, said
    assert version_in(database_url, a) == ["killer"] and version_in(database_url, c) == ["killer"]


def test_tenants_meet_views_made_only_in_revisions_and_irreversible_revisions(
    database_url: URL, names: list[str], project_copy: Path
):
    """Pairs: a new tenant gets the views the history makes (models that declare none), and a
    tenant's downgrade past an irreversible revision is refused in one line, nothing undone."""
    a = names[0]
    tables_only(project_copy)  # the view is made only by a revision, as the cookbook does it
    result = run_in_project(database_url, "-m", "migrations.cli", "create_tenant", a, cwd=project_copy)
    assert result.returncode == 0 and "1 view" in result.stdout, result.stdout + result.stderr
    assert (
        tables_in(database_url, a, views=True) == ["customer_view"] and tables_in(database_url, None, views=True) == []
    )
    check = alembic_cli(database_url, "-x", f"tenant={a}", "check", cwd=project_copy)
    assert check.returncode == 0, check.stdout + check.stderr

    versions_folder = project_copy / "migrations" / "versions"
    versions_folder.joinpath("irreversible_1.py").write_text(marked_irreversible(revision_source("ir1", HEAD)))
    versions_folder.joinpath("irreversible_2.py").write_text(revision_source("ir2", "ir1"))
    assert alembic_cli(database_url, "-x", f"tenant={a}", "upgrade", "head", cwd=project_copy).returncode == 0
    refused = alembic_cli(database_url, "-x", f"tenant={a}", "downgrade", HEAD, cwd=project_copy)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
    assert refused.stdout.strip().startswith("FAILED: revision ir1 (irreversible_1.py) is irreversible"), refused.stdout
    assert version_in(database_url, a) == ["ir2"]
