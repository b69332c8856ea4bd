"""Untrusted text made safe to log: escaped (no forged lines) and truncated (no megabyte log entries)."""

from __future__ import annotations

from typing import Any

DEFAULT_LIMIT = 120


def loggable(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` as one line of at most about ``limit`` characters: control characters escaped, the rest cut."""
    text = value if isinstance(value, str) else repr(value)
    escaped = text.encode("unicode_escape", errors="backslashreplace").decode("ascii", errors="replace")
    if len(escaped) > limit:
        return f"{escaped[:limit]}… ({len(text)} characters)"
    return escaped
