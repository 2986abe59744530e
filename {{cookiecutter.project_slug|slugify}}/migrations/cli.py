"""The project's own commands beside Alembic's, in one command line (the living cookbook's
"Extend CommandLine with custom commands")::

    python -m migrations.cli upgrade head        # every alembic command, as `alembic` runs it
    python -m migrations.cli create_db [--sql]   # recipe 1 (python create_db.py still works)
    python -m migrations.cli at_head             # one line and a non-zero exit unless at head
    python -m migrations.cli print_tables users,orders   # op.create_table() code for existing tables
    python -m migrations.cli apply_models        # the models onto a database the history does not manage

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


def main(argv: list[str] | None = None) -> None:
    cli = CommandLine(prog="python -m migrations.cli")
    for command in (create_db, at_head, print_tables, apply_models):
        cli.register_command(command)
    cli.main(argv=argv)


if __name__ == "__main__":
    main(sys.argv[1:])
