"""The registry of attribution methods: their names, Ecco's aliases, and what each needs.

Why its own module: a request's options are checked against the registry when they are built
(``options.py``), before any computation runs; the methods themselves register from ``attribution.py``,
which the package imports, so the registry is full whenever ``ecco_daemon.analysis`` is importable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecco_daemon.analysis.errors import UnknownName


@dataclass(frozen=True)
class AttributionMethod:
    name: str
    compute: Callable[..., Any]  # (model, arch, seq, options, score, foils, checkpoint) -> Attribution
    default_score: str
    needs_foil: bool
    description: str


ATTRIBUTION_METHODS: dict[str, AttributionMethod] = {}
ALIASES = {
    "ig": "integrated_gradients",
    "saliency": "gradient",
    "input_x_gradient": "grad_x_input",
    "gradient_x_input": "grad_x_input",
}


def register_attribution_method(
    name: str, *, default_score: str = "prob", needs_foil: bool = False, description: str = ""
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add a method to the registry; a duplicate name is refused at import time."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in ATTRIBUTION_METHODS or name in ALIASES:
            raise ValueError(f"attribution method {name!r} is already registered")
        ATTRIBUTION_METHODS[name] = AttributionMethod(
            name, fn, default_score, needs_foil, description or (fn.__doc__ or "").strip().split("\n")[0]
        )
        return fn

    return decorate


def get_attribution_method(name: str) -> AttributionMethod:
    """Look up a method by name or Ecco alias; an unknown name lists the valid ones."""
    method = ATTRIBUTION_METHODS.get(ALIASES.get(name, name))
    if method is None:
        raise UnknownName("attribution method", name, [*ATTRIBUTION_METHODS, *ALIASES])
    return method
