"""How the CLI words a failure: one line that names its flags, never a traceback."""

from __future__ import annotations

from ecco_client.exceptions import EccoError, RemoteError, SetupError

# The flags that stand for the Python arguments an error may ask for.
CLI_SPELLING = {"connection_file": "--connection-file", "address": "--address", "ssh": "--ssh"}


class CommandError(Exception):
    """A mistake in the command line found after parsing (a --target the text does not have)."""


def describe_error(exc: EccoError) -> str:
    """One line for a terminal: the error's kind and its sentence, naming this command's flags."""
    if isinstance(exc, SetupError):
        return f"error: {exc.describe(CLI_SPELLING)}"
    if isinstance(exc, RemoteError):
        return f"error from the daemon ({exc.code}): {exc.message}"
    return f"error: {type(exc).__name__}: {exc}"
