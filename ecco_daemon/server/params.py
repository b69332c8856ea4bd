"""Reading request parameters with clear BAD_REQUEST messages that name the field and what it must be."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ecco_daemon.server.errors import bad_request

_MISSING = object()
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what an id or index may be before numpy or torch sees it


class _Absent(Exception):
    """Carries a default out of the typed readers: a left-out value skips validation."""

    def __init__(self, default: Any) -> None:
        self.default = default


def _defaulting(reader: Any) -> Any:
    def wrapper(self: ParamReader, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return reader(self, name, *args, **kwargs)
        except _Absent as absent:
            return absent.default

    wrapper.__doc__ = reader.__doc__
    return wrapper


def no_params(params: dict[str, Any]) -> dict[str, Any]:
    """The parser of an operation that takes no parameters: any given is refused (PROTOCOL.md §1)."""
    ParamReader(params, [])
    return params


class ParamReader:
    def __init__(self, params: dict[str, Any], known: Sequence[str] | None = None) -> None:
        self.params = params
        if known is not None:
            # Keys may be bytes as well as strings (msgpack allows both): shown as written, sorted as text.
            unknown = sorted(key if isinstance(key, str) else repr(key) for key in params if key not in known)
            if unknown:
                # Nothing a user asked for is silently dropped.
                listed = ", ".join(sorted(known)) or "none"
                raise bad_request(f"unknown parameter(s) {', '.join(unknown)}; known: {listed}")

    def _get(self, name: str, default: Any) -> Any:
        """The given value, or _Absent(default) when the caller left it out (None counts as left out)."""
        value = self.params.get(name, _MISSING)
        if value is _MISSING or value is None:
            if default is _MISSING:
                raise bad_request(f"'{name}' is required", field=name)
            raise _Absent(default)
        return value

    @_defaulting
    def str(self, name: str, default: Any = _MISSING, max_length: int = 1_000_000) -> Any:
        value = self._get(name, default)
        if not isinstance(value, str):
            raise bad_request(f"'{name}' must be a string", field=name)
        if len(value) > max_length:
            raise bad_request(f"'{name}' is longer than {max_length} characters", field=name)
        return value

    @_defaulting
    def bool(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise bad_request(f"'{name}' must be true or false", field=name)
        return value

    @_defaulting
    def int(self, name: str, default: Any = _MISSING, minimum: int | None = None,
            maximum: int | None = None) -> Any:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request(f"'{name}' must be an integer", field=name)
        if minimum is not None and value < minimum:
            raise bad_request(f"'{name}' must be at least {minimum}", field=name)
        if maximum is not None and value > maximum:
            raise bad_request(f"'{name}' must be at most {maximum}", field=name)
        return value

    @_defaulting
    def float(self, name: str, default: Any = _MISSING, minimum: float | None = None,
              maximum: float | None = None) -> Any:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise bad_request(f"'{name}' must be a number", field=name)
        if minimum is not None and value < minimum:
            raise bad_request(f"'{name}' must be at least {minimum}", field=name)
        if maximum is not None and value > maximum:
            raise bad_request(f"'{name}' must be at most {maximum}", field=name)
        return float(value)

    @_defaulting
    def choice(self, name: str, choices: Sequence[str], default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if not isinstance(value, str) or value not in choices:
            raise bad_request(f"'{name}' must be one of {', '.join(choices)}", field=name)
        return value

    @_defaulting
    def str_list(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad_request(f"'{name}' must be a list of strings", field=name)
        return value

    @_defaulting
    def int_list(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if isinstance(value, np.ndarray) and value.ndim == 1 and np.issubdtype(value.dtype, np.integer):
            return [int(v) for v in value]
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise bad_request(f"'{name}' must be a list of integers", field=name)
        if any(not INT64_MIN <= v <= INT64_MAX for v in value):
            # Past 64 bits numpy and torch raise OverflowError, deep in the work.
            raise bad_request(f"'{name}' must hold 64-bit integers", field=name)
        return value

    @_defaulting
    def ids_or_texts(self, name: str, default: Any = _MISSING, max_text: int = 200) -> Any:
        """Token ids and token texts, mixed (a bare text or id is one entry): what names "a token"."""
        value = self._get(name, default)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, np.ndarray):
            return self.int_list(name, default)
        ok = isinstance(value, list) and all(
            (isinstance(v, str) and 1 <= len(v) <= max_text)
            or (isinstance(v, int) and not isinstance(v, bool) and INT64_MIN <= v <= INT64_MAX) for v in value)
        if not ok:
            raise bad_request(f"'{name}' must be a list of token ids or texts of 1 to {max_text} characters",
                              field=name)
        return value

    @_defaulting
    def int_rows(self, name: str, default: Any = _MISSING) -> Any:
        """A list of integers, or a list of such lists; always returned as a list of rows."""
        value = self._get(name, default)
        rows = value if isinstance(value, list) and value and all(
            isinstance(v, list | np.ndarray) for v in value) else [value]
        return [ParamReader({name: row}).int_list(name) for row in rows]
