"""migrations/testing/collector.py: the garbage-collector settings of a pytest run."""

import gc

import pytest

from migrations.testing.collector import FREEZE, GC_ENABLED_AT_START


def test_the_garbage_collector_is_on_again_if_it_was():
    """conftest.py turns it off while the tests are collected, and on again if it was on."""
    assert gc.isenabled() == GC_ENABLED_AT_START


def test_what_collection_made_is_frozen_under_the_pytest_command():
    """This test's own function, made when its module was imported during collection, is
    frozen: the collector's generations (what ``gc.get_objects()`` lists) no longer hold it."""
    if not FREEZE:
        pytest.skip("not the pytest command (or not CPython): nothing is frozen")
    assert gc.get_freeze_count() > 0
    function = test_what_collection_made_is_frozen_under_the_pytest_command
    assert not any(candidate is function for candidate in gc.get_objects())
