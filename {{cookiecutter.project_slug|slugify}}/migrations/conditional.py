"""Cookbook recipe 2, conditional migration elements: should data steps run?

Every revision has ``schema_upgrades()`` and ``data_upgrades()`` (see script.py.mako);
the data steps run only when asked for:

- on the command line: ``alembic -x data=true upgrade head``
  (true/false, yes/no, on/off, 1/0, in any case);
- from Python: ``config.attributes["data"] = True`` before ``command.upgrade(config, ...)``.

Anything else is an error, raised by env.py before the first migration runs.
"""

from __future__ import annotations

from alembic import context
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
