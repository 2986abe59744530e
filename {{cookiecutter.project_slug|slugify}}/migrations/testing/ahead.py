"""PostgreSQL databases made ahead of the tests that will ask for them, and dropped behind them.

A PostgreSQL ``CREATE DATABASE`` copies its template (about 8 MB, written to the WAL) and
waits for the disk: 0.1 to 0.3 s each on a 2-core machine with an ordinary disk, where a
short history's whole suite takes a few seconds and asks for a dozen databases (each test
its own). ``Ahead`` makes them in two threads of its own while the tests run: as many empty
ones as the collected tests ask for (``database_url``, and the first of each migration
suite's walks), and copies of create_db.py's build once it is there (``database_at_head``);
never more than two of a kind waiting. A test that asks for more than counted gets one made
then, as without Ahead. The databases a test is done with are dropped in those threads too,
and the session ends when every drop is done (a drop that fails fails the session's
teardown). SQLite files and MariaDB databases (a directory: milliseconds) are made when
asked for.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager

from sqlalchemy import URL

WAITING = 2  # databases of a kind made and not yet asked for, at most


class Ahead:
    """``create(template)`` makes a uniquely named database (a clone of ``template``, or
    empty) and returns its URL; ``drop(url)`` drops one. ``empties`` and ``copies``: how
    many of each the session's tests will ask for."""

    def __init__(self, create: Callable[[str | None], URL], drop: Callable[[URL], None], empties: int, copies: int):
        self._create, self._drop = create, drop
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="databases-ahead")
        self._lock = threading.Lock()
        self._wanted = {None: empties}  # by template (None: empty), how many more to make
        self._made: dict[str | None, deque[Future[URL]]] = {None: deque()}
        self._copies = copies
        self._drops: list[Future[None]] = []
        self._held: set[str] = set()  # templates someone is connected to: no copy begun
        self._top_up(None)

    def empty(self, counted: bool = True) -> URL | None:
        """An empty database made ahead (its caller drops it), or None: make one now.
        ``counted=False``: one the session's count left out; if it takes one made for a test
        that was counted, one more is made in its place."""
        with self._lock:
            if not counted and self._made[None]:
                self._wanted[None] += 1
        return self._take(None)

    def copy(self, template: str) -> URL | None:
        """A clone of ``template`` made ahead (its caller drops it), or None: make one now."""
        return self._take(template)

    def copies_of(self, template: str) -> None:
        """The template is built, and nothing will connect to it again: start copying it.
        A template cannot be copied while anyone is connected to it."""
        with self._lock:
            self._wanted[template], self._made[template] = self._copies, deque()
        self._top_up(template)

    @contextmanager
    def holding(self, template: str) -> Iterator[None]:
        """Within it, no copy of ``template`` is under way (those begun are waited for, no
        other is begun), so that one may connect to it."""
        with self._lock:
            self._held.add(template)
            under_way = [future for future in self._made.get(template, ()) if not future.done()]
        wait(under_way)
        try:
            yield
        finally:
            with self._lock:
                self._held.discard(template)
            self._top_up(template)

    def stop_copies(self, template: str) -> None:
        """Before the template is dropped: no more copies (those under way are waited for);
        those made and not taken are dropped."""
        with self._lock:
            self._wanted[template] = 0
            made = self._made.pop(template, deque())
        self._drop_when_made(made)

    def drop(self, urls: list[URL]) -> None:
        """Drop these databases in the background (close() waits for them)."""
        with self._lock:
            self._drops.extend(self._threads.submit(self._drop, url) for url in urls)

    def close(self) -> None:
        """Drop what was made and not taken, wait for every drop, and raise the first error."""
        with self._lock:
            self._wanted = dict.fromkeys(self._wanted, 0)
            left = [future for made in self._made.values() for future in made]
            self._made.clear()
        self._drop_when_made(left)
        with self._lock:
            drops, self._drops = self._drops, []
        try:
            wait(drops)
        finally:
            self._threads.shutdown(wait=True)
        errors = [future.exception() for future in drops if future.exception() is not None]
        if errors:
            raise errors[0]

    def _take(self, template: str | None) -> URL | None:
        with self._lock:
            made = self._made.get(template)
            future = made.popleft() if made else None
        if future is None:
            return None
        self._top_up(template)
        try:
            return future.result()  # an error making it: the test that asked sees it
        except BaseException:
            self._drop_when_made([future])  # interrupted while it was made: dropped, not lost
            raise

    def _top_up(self, template: str | None) -> None:
        with self._lock:
            made = None if template in self._held else self._made.get(template)
            while made is not None and len(made) < WAITING and self._wanted.get(template, 0) > 0:
                self._wanted[template] -= 1
                made.append(self._threads.submit(self._create, template))

    def _drop_when_made(self, made) -> None:
        """Cancel those not begun; wait for the others, and drop them."""
        begun = [future for future in made if not future.cancel()]
        wait(begun)
        self.drop([future.result() for future in begun if future.exception() is None])
