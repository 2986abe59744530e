"""Garbage-collector settings for a pytest run of the migration suite: import this module
first in a ``conftest.py`` and take its two hooks (tests/conftest.py does)::

    from migrations.testing.collector import pytest_collection, pytest_configure

Under the ``pytest`` command only (a program that calls ``pytest.main()`` goes on, so
nothing of it is frozen), what exists at import is ``gc.freeze()``-d, the collector is off
while the tests are collected, what collection made is frozen, and so is everything at
the very end, when the process is about to exit. What the imports make (Alembic,
SQLAlchemy, the models and every revision module) lives as long as the run, and every
later collection would walk it again: on a 100-revision history that was about a third
of the suite's time. ``freeze()`` does the same for what a fixture imports later (the
revision modules and the models). What the tests make is collected as usual.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Generator
from pathlib import Path

import pytest


def started_as_pytest() -> bool:
    """Whether this process was started as ``pytest`` or ``python -m pytest``."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None:
        return spec.name in ("pytest", "pytest.__main__")
    return Path(getattr(main, "__file__", None) or "").stem in ("pytest", "py.test")


FREEZE = hasattr(gc, "freeze") and started_as_pytest()  # CPython has gc.freeze()
if FREEZE:
    gc.freeze()
GC_ENABLED_AT_START = gc.isenabled()


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    """Collect with the collector off, freeze what collection made, and turn the collector
    on again if it was on, however collection ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return (yield)
    finally:
        if FREEZE:
            gc.freeze()
        if enabled:
            gc.enable()


def freeze() -> None:
    """Freeze what exists now, under the ``pytest`` command only: for what a fixture imports
    that lives as long as the run (tests/test_migrations.py's revision modules and models,
    which every later collection would walk again: ~0.06 s on a 100-revision history)."""
    if FREEZE:
        gc.freeze()


def pytest_configure(config: pytest.Config) -> None:
    """Freeze everything at the very end: the exit's last collection would walk every object
    still alive, none of it garbage. Registered first, this cleanup runs last, after
    pytest's own final collection."""
    if FREEZE:
        config.add_cleanup(gc.freeze)
