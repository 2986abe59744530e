"""The project's own commands beside Alembic's, in one command line (the living cookbook's
"Extend CommandLine with custom commands")::

    python -m migrations.cli upgrade head        # every alembic command, as `alembic` runs it
    python -m migrations.cli create_db [--sql]   # recipe 1 (python create_db.py still works)
    python -m migrations.cli at_head             # one line and a non-zero exit unless at head
    python -m migrations.cli print_tables users,orders   # op.create_table() code for existing tables
    python -m migrations.cli apply_models        # the models onto a database the history does not manage
    python -m migrations.cli upgrade_tenants     # every tenant to head, with a summary (migrations/all_tenants.py)
    python -m migrations.cli create_tenant acme  # a new tenant, built at head
    python -m migrations.cli check_branches      # one head, named in migrations/head.txt
    python -m migrations.cli picture [--mermaid] [--database] [--url URL]  # the history as a graph
    python -m migrations.cli squash <rev> [--url URL]  # base..rev as one revision of rev's id
    python -m migrations.cli lint [a:b] [--format json]  # what revisions do to a live database

Run it from the project folder (where alembic.ini is), as `alembic`.
"""

from __future__ import annotations

import sys

from alembic import autogenerate
from alembic.config import CommandLine, Config
from alembic.operations import ops
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, Table

from migrations.at_head import require_at_head
from migrations.failures import cannot_connect
from migrations.settings import database_url, run_on_connection


def create_db(config: Config, sql: bool = False) -> None:
    """Build a new database at head from the models, in one step (create_db.py)."""
    import create_db as recipe  # beside alembic.ini, on sys.path with it

    if sql:
        recipe.print_sql(config)
    else:
        config.print_stdout(recipe.create_db(config))


def at_head(config: Config) -> None:
    """Fail, in one line, unless the database is at the history's head(s)."""
    require_at_head(config)
    config.print_stdout("The database is at head.")


def print_tables(config: Config, tables: str) -> None:
    """Print op.create_table() code for tables of the database (comma-separated names)."""
    names = [name.strip() for name in tables.split(",") if name.strip()]

    def reflect(connection: Connection) -> MetaData:
        metadata = MetaData()
        for name in names:
            if not connection.dialect.has_table(connection, name):
                raise CommandError(f"the database has no table {name!r}")
            Table(name, metadata, autoload_with=connection)
        if connection.in_transaction():
            connection.rollback()
        return metadata

    metadata = run_on_connection(database_url(config), reflect, cannot_connect)
    tables_found = [metadata.tables[name] for name in names]
    upgrade = ops.UpgradeOps(
        ops=[ops.CreateTableOp.from_table(table) for table in tables_found]
        + [ops.CreateIndexOp.from_index(index) for table in tables_found for index in table.indexes]
    )
    config.print_stdout(autogenerate.render_python_code(upgrade))


def apply_models(config: Config) -> None:
    """Apply the models to a database the history does not manage, with no revision written
    (nothing is dropped or retyped: see migrations/apply_models.py)."""
    from migrations.apply_models import apply_models as apply

    done = apply(config)
    config.print_stdout("\n".join(done) if done else "The database already matches the models.")


def upgrade_tenants(config: Config, revision: str, tenants, jobs, per_server, sql, sql_dir, create) -> None:
    """Upgrade every tenant; a summary at the end; exit status 1 if any failed (migrations/all_tenants.py)."""
    from migrations.all_tenants import upgrade_tenants as upgrade

    report = upgrade(config, revision, tenants, jobs, per_server, sql or bool(sql_dir), sql_dir, create=create)
    # With --sql, stdout is the script: the summary goes to stderr.
    print(report.summary(), file=sys.stderr if sql and not sql_dir else sys.stdout, flush=True)
    if report.failed:
        raise CommandError(f"{len(report.failed)} of {len(report.outcomes)} tenants failed (listed above)")


def create_tenant(config: Config, tenant: str) -> None:
    """Build a new tenant at head: its schema or database, the models, the stamp (migrations/new_tenant.py)."""
    from migrations.new_tenant import create_tenant as create

    config.print_stdout(create(config, tenant))


def check_branches(config: Config, write: bool = False) -> None:
    """Fail in one line unless the history has one head, named in migrations/head.txt."""
    from migrations.heads import check_branches as check
    from migrations.stamp import script_directory

    config.print_stdout(check(script_directory(config), write=write))


def picture(config: Config, mermaid: bool = False, database: bool = False, url: list[str] | None = None) -> None:
    """Print the revision graph: text, or Mermaid; and where the databases asked about stand."""
    from migrations import picture as draw
    from migrations.at_head import database_revisions
    from migrations.settings import parse_url
    from migrations.stamp import script_directory

    urls = [database_url(config)] if database else []
    urls += [parse_url(raw, "--url") for raw in url or []]
    standing = {shown.render_as_string(hide_password=True): database_revisions(config, shown) for shown in urls}
    nodes = draw.graph(script_directory(config), standing)
    config.print_stdout(draw.mermaid(nodes, standing) if mermaid else draw.text(nodes, standing))


def squash(config: Config, revision: str, url: list[str] | None = None, unchecked: bool = False) -> None:
    """Replace the revisions from base up to REVISION with one revision of its id (migrations/squash.py)."""
    from migrations.settings import parse_url
    from migrations.squash import squash as squash_history

    urls = [parse_url(raw, "--url") for raw in url] if url else None
    config.print_stdout(squash_history(config, revision, urls, check=not unchecked))


def lint(
    config: Config, revisions: str | None = None, dialect: str | None = None, format: str = "text", no_ask: bool = False
) -> None:
    """Name what each revision would do to a live database (locks, rewrites, the running version)."""
    from migrations import deploy_lint
    from migrations.at_head import database_revisions
    from migrations.stamp import script_directory

    script = script_directory(config)
    url = database_url(config)
    if revisions is None:  # those the configured database has not applied, after the baseline
        chosen = deploy_lint.to_lint(config, script, database_revisions(config, url))
    else:
        chosen = deploy_lint.revisions_in(script, revisions)
    configured = deploy_lint.dialect_of(url)
    dialect = dialect or configured
    # MariaDB is asked how it would run each ALTER, on empty copies in a scratch database
    ask = url if dialect == "mariadb" == configured and not no_ask else None
    report = deploy_lint.lint(config, chosen, dialect, script, ask=ask)
    config.print_stdout(report.json() if format == "json" else report.text())
    if format == "json" and (report.open or report.problems):
        sys.exit(1)  # stdout is the JSON alone; tools read the exit status
    if report.open or report.problems:
        found = [f"{len(report.open)} deploy finding{'s' if len(report.open) != 1 else ''} not acknowledged"]
        if report.problems:
            found.append(f"{len(report.problems)} deploy-ok comment(s) not understood")
        raise CommandError(f"{', '.join(found)} (listed above)")


def main(argv: list[str] | None = None) -> None:
    cli = CommandLine(prog="python -m migrations.cli")
    for command in (create_db, at_head, print_tables, apply_models, create_tenant):
        cli.register_command(command)
    tenants = cli.subparsers.add_parser("upgrade_tenants", help=upgrade_tenants.__doc__.splitlines()[0])
    tenants.add_argument("revision", nargs="?", default="heads", help="where to (default: heads)")
    tenants.add_argument("--tenants", help="schemas:PATTERN, query:SQL, module:function or a,b,c (else alembic.ini)")
    tenants.add_argument("--jobs", type=int, help="tenants upgraded at once (processes; default: up to 4)")
    tenants.add_argument("--per-server", type=int, help="at most this many at once on one server (default: --jobs)")
    tenants.add_argument("--sql", action="store_true", help="print each tenant's SQL instead, as one script")
    tenants.add_argument("--sql-dir", help="write each tenant's SQL to DIR/<tenant>.sql instead")
    tenants.add_argument("--create", action="store_true", help="build the listed tenants that do not exist, at head")
    kwargs = ["tenants", "jobs", "per_server", "sql", "sql_dir", "create"]
    tenants.set_defaults(cmd=(upgrade_tenants, ["revision"], kwargs))
    branches = cli.subparsers.add_parser("check_branches", help=check_branches.__doc__.splitlines()[0])
    branches.add_argument("--write", action="store_true", help="rewrite migrations/head.txt instead of checking it")
    branches.set_defaults(cmd=(check_branches, [], ["write"]))
    drawn = cli.subparsers.add_parser("picture", help=picture.__doc__.splitlines()[0])
    drawn.add_argument("--mermaid", action="store_true", help="a ```mermaid block (GitHub draws it) instead of text")
    drawn.add_argument("--database", action="store_true", help="show where the configured database stands")
    drawn.add_argument("--url", action="append", help="show where this database stands (again for more)")
    drawn.set_defaults(cmd=(picture, [], ["mermaid", "database", "url"]))
    squashing = cli.subparsers.add_parser("squash", help=squash.__doc__.splitlines()[0])
    squashing.add_argument("revision", help="the last revision to squash (its id is kept)")
    squashing.add_argument(
        "--url",
        action="append",
        help="refuse if this database stands before REVISION (again for more; default: the configured database)",
    )
    squashing.add_argument("--unchecked", action="store_true", help="do not look at any database before squashing")
    squashing.set_defaults(cmd=(squash, ["revision"], ["url", "unchecked"]))
    linting = cli.subparsers.add_parser("lint", help=lint.__doc__.splitlines()[0])
    linting.add_argument(
        "revisions",
        nargs="?",
        help="a range, a:b (a excluded; default: what the configured database has not applied, after"
        " deploy_lint_baseline)",
    )
    linting.add_argument("--dialect", choices=["postgresql", "mariadb", "sqlite"], help="default: the database's")
    linting.add_argument("--format", choices=["text", "json"], default="text", help="json: for tools")
    linting.add_argument(
        "--no-ask", action="store_true", help="MariaDB: do not ask the server (a scratch database) how each ALTER runs"
    )
    linting.set_defaults(cmd=(lint, [], ["revisions", "dialect", "format", "no_ask"]))
    cli.main(argv=argv)


if __name__ == "__main__":
    main(sys.argv[1:])
