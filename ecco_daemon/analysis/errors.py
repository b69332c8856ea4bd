"""Errors raised by the analyses; each carries ``code``, the name of the protocol error code it maps to.

Why: a caller must tell a bad request (unknown method, position out of range) apart from a model the
analyses cannot read, and every message names what was wrong and what would be valid.
"""

from __future__ import annotations

from collections.abc import Iterable


class AnalysisError(Exception):
    """Base class for analysis failures."""

    code = "BAD_REQUEST"


class InvalidArgument(AnalysisError, ValueError):
    """A request's arguments do not fit the run (position out of range, unknown layer, missing foil)."""

    code = "BAD_REQUEST"


class UnsupportedModel(AnalysisError):
    """Architecture inspection could not find a part the analyses need; ``missing`` names the parts."""

    code = "UNSUPPORTED_MODEL"

    def __init__(self, model_name: str, missing: Iterable[str], hint: str = "") -> None:
        self.model_name = model_name
        self.missing = tuple(missing)
        message = f"cannot analyse {model_name}: could not find {', '.join(self.missing)}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class UnknownName(AnalysisError, KeyError):
    """A name looked up in a registry is not there; the message lists the valid names."""

    code = "BAD_REQUEST"

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = tuple(sorted(valid))
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid)}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class NotCaptured(AnalysisError):
    """A view asked for data the run did not record (e.g. attention without eager attention)."""

    code = "BAD_REQUEST"
