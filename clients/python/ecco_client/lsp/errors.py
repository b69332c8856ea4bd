"""Errors a command answers with: a sentence for the user, and the daemon's stable code as data."""

from __future__ import annotations

from pygls.exceptions import JsonRpcException

from ecco_client.exceptions import DaemonUnavailable, EccoError, ModelNotFound, RemoteError

REQUEST_FAILED = -32803  # LSP's RequestFailed: the request was valid, but doing it failed


class CommandFailed(JsonRpcException):
    CODE = REQUEST_FAILED

    def __init__(self, message: str, daemon_code: str | None = None) -> None:
        super().__init__(
            message=message, code=REQUEST_FAILED, data={"daemonCode": daemon_code} if daemon_code else None
        )


class BadArguments(JsonRpcException):
    CODE = -32602  # InvalidParams


def command_failure(error: EccoError) -> CommandFailed:
    """The user-facing error for a failed daemon call."""
    if isinstance(error, DaemonUnavailable):
        return CommandFailed(f"{error}", "DAEMON_UNAVAILABLE")
    if isinstance(error, ModelNotFound):
        return CommandFailed(f"{error.message} (set ecco.model to one of them)", error.code)
    if isinstance(error, RemoteError):
        return CommandFailed(f"the daemon refused: {error.message}", error.code)
    return CommandFailed(f"{error}")
