"""Client exceptions; an error reply becomes the class chosen by its code (as pygls's from_error)."""

from __future__ import annotations

from typing import Any

from ecco_protocol.errors import ErrorCode


class EccoError(Exception):
    """Base of every error this client raises."""


class DaemonUnavailable(EccoError):
    """Nothing listening, the connection was lost, or the daemon stayed silent past the timeout."""


# How each surface spells the settings an error asks for: Python's keyword arguments, the CLI's flags.
PYTHON_SPELLING = {"connection_file": "connection_file=", "key": "key=", "address": "address=", "ssh": "ssh="}


class SetupError(EccoError):
    """The client cannot connect as set up: an unreadable connection file, no key, a tunnel it cannot open.

    ``remedy`` names the settings that would fix it by their Python names; ``describe`` spells them for
    another surface (the CLI says ``--connection-file``, not ``connection_file=``).
    """

    def __init__(self, problem: str, remedy: tuple[str, ...] = ()) -> None:
        self.problem = problem
        self.remedy = remedy
        super().__init__(self.describe(PYTHON_SPELLING))

    def describe(self, spelling: dict[str, str]) -> str:
        options = [spelling[name] for name in self.remedy if name in spelling]
        return f"{self.problem}; give {' or '.join(options)}" if options else self.problem


class NoConnectionFile(SetupError, DaemonUnavailable):
    """No connection file where one was expected: no daemon was started there (autostart starts one)."""


class ProtocolError(EccoError):
    """The daemon's reply could not be read or verified."""


class RemoteError(EccoError):
    """The daemon answered with an error; ``code`` is stable, ``message`` is for humans."""

    code: str = "REMOTE_ERROR"

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
        self.details = details or {}


class BadRequest(RemoteError):
    pass


class Unauthorized(RemoteError):
    pass


class Forbidden(RemoteError):
    pass


class NotFound(RemoteError):
    pass


class ModelNotFound(NotFound):
    pass


class ResultEvicted(NotFound):
    pass


class ResultExpired(NotFound):
    """The stored result was unused past its time-to-live; run the analysis again."""


class Cancelled(RemoteError):
    pass


class TooLarge(RemoteError):
    pass


class QuotaExceeded(RemoteError):
    pass


class ShuttingDown(RemoteError):
    pass


_BY_CODE: dict[str, type[RemoteError]] = {
    ErrorCode.BAD_REQUEST: BadRequest,
    ErrorCode.BAD_FRAME: BadRequest,
    ErrorCode.UNKNOWN_OPERATION: BadRequest,
    ErrorCode.UNAUTHORIZED: Unauthorized,
    ErrorCode.FORBIDDEN: Forbidden,
    ErrorCode.NOT_FOUND: NotFound,
    ErrorCode.MODEL_NOT_FOUND: ModelNotFound,
    ErrorCode.RESULT_EVICTED: ResultEvicted,
    ErrorCode.RESULT_EXPIRED: ResultExpired,
    ErrorCode.CANCELLED: Cancelled,
    ErrorCode.TOO_LARGE: TooLarge,
    ErrorCode.QUOTA_EXCEEDED: QuotaExceeded,
    ErrorCode.SHUTTING_DOWN: ShuttingDown,
}


def error_from_reply(content: dict[str, Any]) -> RemoteError:
    code = str(content.get("code", "INTERNAL"))
    message = str(content.get("message", "the daemon reported an error without a message"))
    details = content.get("details") if isinstance(content.get("details"), dict) else None
    return _BY_CODE.get(code, RemoteError)(code, message, details)
