"""Cookbook recipe 2, conditional migration elements: should data steps run?

Every revision has ``schema_upgrades()`` and ``data_upgrades()`` (see script.py.mako);
the data steps run only when asked for:

- on the command line: ``alembic -x data=true upgrade head``
  (true/false, yes/no, on/off, 1/0, in any case);
- from Python: ``config.attributes["data"] = True`` before ``command.upgrade(config, ...)``.

Anything else is an error, raised by env.py before the first migration runs.
"""

from __future__ import annotations

from types import FunctionType

from alembic import context
from alembic.script import Script
from alembic.util import CommandError

TRUE = frozenset({"true", "yes", "on", "1"})
FALSE = frozenset({"false", "no", "off", "0"})


def data_enabled() -> bool:
    """True when this run should include the data steps."""
    option = context.get_x_argument(as_dictionary=True).get("data")
    if option is not None:
        word = option.strip().lower()
        if word in TRUE | FALSE:
            return word in TRUE
        raise CommandError(f"-x data={option!r} is not a yes/no value: use -x data=true or -x data=false.")
    attribute = context.config.attributes.get("data", False)
    if not isinstance(attribute, bool):
        raise CommandError(f'config.attributes["data"] = {attribute!r}: set it to True or False.')
    return attribute


def _does_nothing() -> None:
    """A body that is only a docstring (and ``pass``) compiles to this function's code."""


def _passes() -> None:
    pass  # ... and one that is only ``pass``, without a docstring, to this one's


NOTHING = frozenset({_does_nothing.__code__.co_code, _passes.__code__.co_code})


def has_data_steps(revision: Script) -> bool:
    """Whether ``-x data=true`` changes what this revision runs: it has a ``data_upgrades()``
    or ``data_downgrades()`` that does something, or another function of its, ``upgrade()``
    and ``downgrade()`` aside, asks for the flag. A revision not written from script.py.mako
    has none of these: it runs the same either way."""
    functions = {name: value for name, value in vars(revision.module).items() if isinstance(value, FunctionType)}
    for name in ("data_upgrades", "data_downgrades"):
        code = functions[name].__code__ if name in functions else None
        if code is not None and (code.co_code not in NOTHING or code.co_names):
            return True
    asking = {name for name, function in functions.items() if "data_enabled" in function.__code__.co_names}
    return not asking <= {"upgrade", "downgrade"}
