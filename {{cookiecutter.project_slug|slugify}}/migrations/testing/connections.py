"""The migration suite's connections, through the URL's own driver, sync or async.

The suite's machinery (stairway.py, schema.py, catalog.py) is sync code on a sync
Connection, as env.py is. On an async URL (``postgresql+asyncpg``, ``sqlite+aiosqlite``...)
it runs as Alembic's async template runs env.py: on an AsyncConnection, through
``run_sync``. ``Link`` keeps such a connection open for a ``with`` block, on an event loop
of the suite's own (one per thread), and ``link.run(fn)`` calls ``fn`` where the sync side of
the connection can be used. On a sync URL a Link is an Engine's connection, and ``run(fn)``
is ``fn()``: nothing is added to a sync suite.

Call a Link's ``run`` outside any running event loop (the suite's tests are sync tests).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import URL, Connection, Engine

from migrations.settings import is_async, make_async_engine, make_engine, run_on_connection

if TYPE_CHECKING:  # greenlet may not be installed: imported only where an async URL is used
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")
_loops = threading.local()


def event_loop() -> asyncio.AbstractEventLoop:
    """This thread's event loop for the suite's async connections (it never runs on its own)."""
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    return loop


class Link:
    """A connection to ``url`` for a ``with`` block, through the URL's driver:

    - ``connection``: a sync Connection (on an async URL, the AsyncConnection's sync side);
    - ``shared``: what env.py takes in ``config.attributes["connection"]`` (the Connection,
      or the AsyncConnection, which env.py uses through ``run_sync``);
    - ``run(fn, *args)``: ``fn(*args)`` where ``connection`` can be used.

    ``options`` are the Engine's execution options (e.g. ``isolation_level="AUTOCOMMIT"``)."""

    def __init__(self, url: URL, **options: Any) -> None:
        self.url = url
        self.is_async = is_async(url)
        self.options = options
        self.connection: Connection
        self.shared: Connection | AsyncConnection

    def __enter__(self) -> Link:
        if not self.is_async:
            engine = make_engine(self.url)
            self._engine: Engine | AsyncEngine = engine.execution_options(**self.options) if self.options else engine
            self.connection = self.shared = self._engine.connect()
            return self
        from sqlalchemy.util.concurrency import in_greenlet

        self._in_greenlet = in_greenlet
        engine = make_async_engine(self.url)
        self._engine = engine.execution_options(**self.options) if self.options else engine
        try:
            self.shared = event_loop().run_until_complete(self._engine.connect().start())
        except BaseException:
            event_loop().run_until_complete(self._engine.dispose())
            raise
        self.connection = self.shared.sync_connection
        return self

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        if not self.is_async or self._in_greenlet():  # sync, or inside a run already
            return fn(*args)
        return event_loop().run_until_complete(self.shared.run_sync(lambda _connection: fn(*args)))

    def __exit__(self, *_exc: object) -> None:
        if not self.is_async:
            self.connection.close()
            self._engine.dispose()
            return
        loop = event_loop()
        try:
            loop.run_until_complete(self.shared.close())
        finally:
            loop.run_until_complete(self._engine.dispose())


def connected(target: URL | Engine | AsyncEngine, fn: Callable[..., T], *args: Any, **options: Any) -> T:
    """``fn(connection, *args)`` on a new connection to ``target`` (a URL: through its own
    driver, see Link; an Engine or AsyncEngine: migrations.settings.run_on_connection)."""
    if not isinstance(target, URL):
        return run_on_connection(target, lambda connection: fn(connection, *args))
    with Link(target, **options) as link:
        return link.run(fn, link.connection, *args)
