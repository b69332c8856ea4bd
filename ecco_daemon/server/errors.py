"""The one exception a handler raises to answer with a stable error code."""

from __future__ import annotations

from typing import Any

from ecco_protocol.errors import ErrorCode

# Error messages may quote what the caller sent; a reply never carries more than this much of it.
MAX_MESSAGE_LENGTH = 2000


class OperationError(Exception):
    def __init__(self, code: ErrorCode, message: str, details: dict[str, Any] | None = None) -> None:
        if len(message) > MAX_MESSAGE_LENGTH:
            message = f"{message[:MAX_MESSAGE_LENGTH]}… ({len(message)} characters in all)"
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def to_content(self) -> dict[str, Any]:
        content: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.details:
            content["details"] = self.details
        return content


def bad_request(message: str, **details: Any) -> OperationError:
    return OperationError(ErrorCode.BAD_REQUEST, message, details or None)
