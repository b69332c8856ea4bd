"""How both command lines (``ecco-daemon``, ``ecco-client``) present their flags, in one place.

Why here: the wire package is the one module both sides install. Both CLIs show every flag with its
default, and accept their global options before or after the subcommand (``ecco-client explain TEXT
--connection-file F`` as well as ``ecco-client --connection-file F explain TEXT``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every flag's help ends with its default, unless the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
            return f"{text} (default: {'on' if action.default else 'off'})"
        if action.default is None or action.default == []:
            return f"{text} (default: none)"
        return f"{text} (default: %(default)s)"


def global_options(add: Callable[[argparse.ArgumentParser, bool], None]) -> argparse.ArgumentParser:
    """A parent parser holding the global options for every subcommand: ``add(parser, False)`` adds them
    without defaults there, so a value given after the subcommand wins and one given before it is kept."""
    parent = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    add(parent, False)
    return parent
