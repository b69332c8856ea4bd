"""Converts analysis results (numpy arrays and scalars, tuples, nested dicts) to the plain JSON values
the renderer takes. Non-finite floats become null, since JSON has no NaN. numpy is not imported here:
arrays are recognized by their `tolist`, so this stays cheap to import."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def to_plain(value: Any) -> Any:
    """Returns `value` as str/int/float/bool/None, lists and str-keyed dicts only."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars
        return to_plain(value.tolist())
    if hasattr(value, "item") and callable(value.item):
        return to_plain(value.item())
    raise TypeError(f"cannot turn {type(value).__name__} into view data (plain JSON values only)")
