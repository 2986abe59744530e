"""MariaDB: a test's copy of the database at head, made as good as new for a later test.

MariaDB commits and syncs every DDL statement, so replaying a schema of hundreds of tables
takes seconds to minutes per copy. A copy its test has finished with is kept instead, when:
no one is connected to it any more, it has no sequence (whose position SHOW CREATE does not
show), and every table, view, routine, trigger and event, and the database itself, is as
``SHOW CREATE`` rendered them in the original, once its rows are deleted, the original's
rows copied back, and the AUTO_INCREMENT counters put back. Otherwise it is dropped.
(Django's test runner flushes its MariaDB database between tests in the same way, without
the check.)
"""

from __future__ import annotations

import re

from sqlalchemy import URL, Connection
from sqlalchemy.exc import DBAPIError

from migrations.build_cleanup import tables_with_rows
from migrations.testing.connections import connected

Picture = dict[tuple[str, str], str]  # (kind, name) -> its SHOW CREATE statement
OBJECTS = """
    SELECT ROUTINE_TYPE, ROUTINE_NAME, 2 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()
    UNION ALL
    SELECT 'TRIGGER', TRIGGER_NAME, 2 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()
    UNION ALL
    SELECT 'EVENT', EVENT_NAME, 3 FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()
"""
AUTO_INCREMENT = re.compile(r" AUTO_INCREMENT=(\d+)")


def picture(connection: Connection) -> Picture | None:
    """Every object of the database as SHOW CREATE renders it, the database's own name taken
    out (a view names its tables with it); None when the database has a sequence."""
    quote = connection.dialect.identifier_preparer.quote
    found: Picture = {}
    for name, kind in connection.exec_driver_sql("SHOW FULL TABLES").all():
        if kind == "SEQUENCE":
            return None
        keyword = "VIEW" if kind == "VIEW" else "TABLE"
        found[(keyword, name)] = connection.exec_driver_sql(f"SHOW CREATE {keyword} {quote(name)}").one()[1]
    for kind, name, column in connection.exec_driver_sql(OBJECTS).all():
        found[(kind, name)] = connection.exec_driver_sql(f"SHOW CREATE {kind} {quote(name)}").one()[column]
    database = connection.exec_driver_sql("SELECT DATABASE()").scalar_one()
    found[("DATABASE", "")] = connection.exec_driver_sql(f"SHOW CREATE DATABASE {quote(database)}").one()[1]
    return {key: sql.replace(quote(database), "`<database>`") for key, sql in found.items()}


def rows(connection: Connection, table: str) -> list[tuple]:
    quote = connection.dialect.identifier_preparer.quote
    return sorted(tuple(row) for row in connection.exec_driver_sql(f"SELECT * FROM {quote(table)}"))


class Original:
    """What a copy must be once more to be kept: the original's picture and rows."""

    def __init__(self, url: URL) -> None:
        self.url = url
        connected(url, self._read)

    def _read(self, connection: Connection) -> None:
        self.picture = picture(connection)
        tables = [name for kind, name in self.picture or {} if kind == "TABLE"]
        self.rows = {table: rows(connection, table) for table in tables_with_rows(connection, tables)}

    def restore(self, url: URL) -> bool:
        """Make the copy at ``url`` as good as new; False (leaving it for the caller to drop)
        when it cannot be made so."""
        if self.picture is None:
            return False
        try:
            return connected(url, self._restore)
        except DBAPIError:  # e.g. its test dropped a table the original's rows go back into
            return False

    def _restore(self, connection: Connection) -> bool:
        others = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()"
        if connection.exec_driver_sql(others).scalar_one():
            return False  # its test left a session open: it may still change
        found = picture(connection)
        if found is None or found.keys() != self.picture.keys():
            return False
        quote = connection.dialect.identifier_preparer.quote
        tables = [name for kind, name in found if kind == "TABLE"]
        connection.exec_driver_sql("SET SESSION foreign_key_checks = 0")  # any order, no cascades
        for table in tables_with_rows(connection, tables):
            connection.exec_driver_sql(f"DELETE FROM {quote(table)}")
        original = quote(self.url.database)
        for table in self.rows:
            connection.exec_driver_sql(f"INSERT INTO {quote(table)} SELECT * FROM {original}.{quote(table)}")
        connection.exec_driver_sql("SET SESSION foreign_key_checks = 1")
        connection.commit()
        for key, sql in found.items():
            wanted = self.picture[key]
            if sql == wanted:
                continue
            if key[0] != "TABLE" or AUTO_INCREMENT.sub("", sql) != AUTO_INCREMENT.sub("", wanted):
                return False
            counter = AUTO_INCREMENT.search(wanted)
            connection.exec_driver_sql(f"ALTER TABLE {quote(key[1])} AUTO_INCREMENT = {counter[1] if counter else 1}")
            shown = connection.exec_driver_sql(f"SHOW CREATE TABLE {quote(key[1])}").one()[1]
            if shown.replace(quote(connection.engine.url.database), "`<database>`") != wanted:
                return False
        # Triggers may have written rows while deleting: the rows must be the original's.
        filled = tables_with_rows(connection, tables)
        same = sorted(filled) == sorted(self.rows)
        same = same and all(rows(connection, table) == self.rows[table] for table in filled)
        connection.commit()
        return same
