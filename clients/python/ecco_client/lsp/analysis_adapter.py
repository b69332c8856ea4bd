"""The language server's side of an analysis: the explain request, the document ranges of its tokens,
the panel's RenderSpec, and the recompute requests with the view data they give.

Why one module: everything else in the server works on ``Analysis`` (views.py reads the daemon's reply
into it) and on ``ExplainedToken``; what the daemon and the renderer expect of a selection is here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lsprotocol import types

from ecco_client.lsp.errors import BadArguments, CommandFailed
from ecco_client.lsp.results import ExplainedToken
from ecco_client.lsp.token_spans import token_spans
from ecco_client.params import analyze_params
from ecco_client.render.plain import to_plain
from ecco_client.tabs import analysis_views, tabs_view
from ecco_client.views import (
    Alternative,
    Analysis,
    attention_view,
    layer_predictions_entry,
    layer_predictions_view,
    nmf_view,
    rankings_watch_view,
    view_reply,
)

ALTERNATIVES = 5  # alternatives kept per token (hover shows five)
TOPK = 10


CONTRASTIVE = "contrastive"


def analyze_request(text: str, model: str, attribution: Sequence[str], foil: str | None = None) -> dict[str, Any]:
    """The ``analyze`` parameters of an explained selection; with a foil (one token's text, checked by the
    daemon, which names the pieces of a text that is several), the contrastive method alone, since with
    foils the daemon attributes the contrastive score with every method anyway."""
    if not foil:
        return analyze_params(model, text, attribution, {"topk": TOPK})
    return analyze_params(model, text, [CONTRASTIVE], {"topk": TOPK, "foils": [foil]})


# ------------------------------------------------------------------------------------------- tokens


def explained_tokens(
    analysis: Analysis, text: str, position_at: Callable[[int], types.Position]
) -> list[ExplainedToken]:
    """The tokens with their document ranges; ``position_at`` maps an offset in ``text`` to a position."""
    spans = token_spans(text, analysis.tokens, analysis.special)
    found = []
    for index, token_text in enumerate(analysis.tokens):
        span = spans[index]
        found.append(
            ExplainedToken(
                index=index,
                text=token_text,
                range=types.Range(start=position_at(span[0]), end=position_at(span[1])) if span else None,
                probability=analysis.probabilities[index],
                rank=analysis.ranks[index],
                alternatives=analysis.alternatives[index][:ALTERNATIVES],
            )
        )
    return found


def streamed_token(event: Mapping[str, Any], index: int) -> ExplainedToken:
    """A generation `token` event as a continuation token (no range: it is not in the document)."""
    text = str(event.get("token", ""))
    alternatives = [
        Alternative(str(a.get("token", "")), float(a.get("prob", 0.0)))
        for a in event.get("alternatives", []) or []
    ]
    chosen = event.get("token_id")
    ids = [a.get("id") for a in event.get("alternatives", []) or []]
    rank = ids.index(chosen) + 1 if chosen is not None and chosen in ids else None
    probability = event.get("prob")
    return ExplainedToken(
        index=index,
        text=text,
        range=None,
        probability=float(probability) if probability is not None else None,
        rank=rank,
        alternatives=alternatives[:ALTERNATIVES],
        generated=True,
    )


# -------------------------------------------------------------------------------------------- views


def render_spec(analysis: Analysis, extras: Mapping[str, Mapping[str, Any] | None] | None = None) -> dict[str, Any]:
    """The RenderSpec the panel draws: tabs of every view this analysis filled, and the ``extras`` asked
    for after it (nmf, rankings_watch, attention; by view name)."""
    return tabs_view(analysis_views(analysis, **dict(extras or {}), live=True), {"live": True}).to_json()


# ---------------------------------------------------------------------------------------- recompute

NMF_DEFAULT_K = 3


def view_request(analysis: Analysis, name: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The daemon request for one view of the stored run."""
    if analysis.result_id is None:
        raise CommandFailed("the daemon kept no result for this analysis; explain the selection again")
    return "view", {"result_id": analysis.result_id, "view": name, "params": dict(params)}


def recompute_request(analysis: Analysis, view: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The daemon request that computes the renderer's ``view`` anew from the stored run."""
    try:
        if view == "layer-predictions":
            return view_request(
                analysis, "layer_predictions", {"position": int(params["position"]), "topk": TOPK}
            )
        if view == "nmf":
            k = int(params.get("k", NMF_DEFAULT_K))
            layers = {n: int(params[n]) for n in ("from_layer", "to_layer") if params.get(n) is not None}
            return view_request(analysis, "nmf", {"n_components": k, **layers})
        if view in ("rankings-watch", "rankings_watch"):
            watch = [w if isinstance(w, (int, str)) else str(w) for w in params.get("watch", [])]
            return view_request(
                analysis, "rankings_watch", {"position": int(params["position"]), "watch": watch}
            )
        if view == "attention":  # one layer, every head: the panel embeds one layer at a time
            return view_request(analysis, "attention", {"layer": int(params["layer"])})
    except (KeyError, TypeError, ValueError) as exc:
        raise BadArguments(f"ecco.recompute: bad parameters for {view}: {exc}") from exc
    raise BadArguments(
        f"ecco.recompute: no view {view!r}; known: layer-predictions, nmf, rankings-watch, attention"
    )


def recompute_view_data(
    analysis: Analysis, view: str, params: Mapping[str, Any], answer: Mapping[str, Any]
) -> Any:
    """The renderer's complete data for the view after the daemon's answer ({result_id, view, data})."""
    answer = view_reply(answer)
    if view == "layer-predictions":
        entry = layer_predictions_entry(analysis, answer)
        kept = [
            e
            for e in (analysis.layer_predictions or {}).get("positions", [])
            if e["position"] != entry["position"]
        ]
        analysis.layer_predictions = layer_predictions_view(analysis, [*kept, entry], entry["position"])
        return to_plain(analysis.layer_predictions)
    if view == "nmf":
        return to_plain(nmf_view(analysis, answer))
    if view == "attention":
        return to_plain(attention_view(analysis, answer))
    return to_plain(rankings_watch_view(analysis, answer))
