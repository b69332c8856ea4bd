"""The view tabs of one analysis: one order and one title per view, for every surface.

Why one place: the notebook's ``Output`` and the editor's panel draw the same analysis, and their tabs
must not drift apart (which views, in which order, under which titles).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ecco_client import views
from ecco_client.render.html import ViewSpec

TITLES = {
    "tokens": "Output",
    "probability": "Probability",
    "saliency": "Saliency",
    "layer_predictions": "Layer predictions",
    "rankings": "Rankings",
    "rankings_watch": "Rankings watch",
    "nmf": "Neuron factors",
    "attention": "Attention",
}
# the views a live panel recomputes (ecco.recompute)
LIVE = frozenset({"layer_predictions", "nmf", "rankings_watch", "attention"})


def view_spec(view: str, data: Mapping[str, Any], options: Mapping[str, Any] | None = None) -> ViewSpec:
    """One view, titled as every surface titles it."""
    return ViewSpec(view, data, dict(options or {}), TITLES[view])


def analysis_views(analysis: views.Analysis, *, tokens: list[dict[str, Any]] | None = None,
                   nmf: Mapping[str, Any] | None = None, rankings_watch: Mapping[str, Any] | None = None,
                   attention: Mapping[str, Any] | None = None, live: bool = False) -> list[ViewSpec]:
    """The views the analysis already holds (no request to the daemon), in tab order.

    ``tokens`` replaces each view's token data (an Output marks its generated tokens; attention keeps
    its own, the decoder's); with ``live`` the views a panel can recompute say so.
    """
    found = [
        ("probability", views.probability_view(analysis)),
        ("saliency", views.saliency_view(analysis)),
        ("layer_predictions", analysis.layer_predictions),
        ("rankings", views.rankings_view(analysis)),
        ("nmf", nmf),
        ("rankings_watch", rankings_watch),
        ("attention", attention),
    ]
    return [
        view_spec(name, data if tokens is None or name == "attention" else {**data, "tokens": tokens},
                  {"live": True} if live and name in LIVE else None)
        for name, data in found
        if data is not None
    ]


def tabs_view(specs: Sequence[ViewSpec], options: Mapping[str, Any] | None = None) -> ViewSpec:
    """Several views as one ``tabs`` view (protocol/VIEWS.md)."""
    tabs = [{"title": s.title or s.view, "view": s.view, "data": s.data, "options": dict(s.options)} for s in specs]
    return ViewSpec("tabs", {"tabs": tabs}, dict(options or {}))
