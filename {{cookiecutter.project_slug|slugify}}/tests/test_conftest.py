"""tests/conftest.py's own machinery."""

import gc


def test_the_garbage_collector_is_on_while_the_tests_run():
    """conftest.py turns it off while the tests are collected, and must turn it on again."""
    assert gc.isenabled()
