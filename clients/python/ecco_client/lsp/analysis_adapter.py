"""Reads the daemon's teacher-forced analysis into per-token facts and the renderer's view data.

Why one module: the analysis reply's layout is the daemon's (ecco_daemon/analysis/run.py summary); this
is the only place that knows it. Everything else in the server works on ``Analysis``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from lsprotocol import types

from ..render.plain import to_plain
from .errors import BadArguments, CommandFailed
from .results import Alternative, ExplainedToken
from .token_spans import token_spans

ALTERNATIVES = 5  # alternatives kept per token (hover shows five)
TOPK = 10


@dataclass
class Analysis:
    model: str
    result_id: str | None  # the daemon's stored run, for recompute
    tokens: list[str]  # (T,) the text each token adds
    token_ids: list[int]  # (T,)
    special: list[bool]  # (T,)
    probabilities: list[float | None]  # (T,) None where not scored (the first token)
    ranks: list[int | None]
    entropy: list[float | None]
    alternatives: list[list[Alternative]]  # (T,) the model's top choices at each position
    alternative_ids: list[list[int]]
    n_layers: int = 0
    rankings: np.ndarray | None = None  # (L, N) rank of each scored token at every layer
    target_positions: list[int] = field(default_factory=list)  # (N,)
    attributions: dict[str, np.ndarray] = field(default_factory=dict)  # method -> (N, T)
    layer_predictions: dict[str, Any] | None = None  # the layer_predictions view data so far


def analyze_params(text: str, model: str, attribution: Sequence[str]) -> dict[str, Any]:
    return {"model": model, "text": text, "attribution": list(attribution), "topk": TOPK}


def _array(value: Any) -> np.ndarray:
    return np.asarray(value) if value is not None else np.zeros(0)


def read_analysis(raw: Mapping[str, Any], model: str) -> Analysis:
    """The analysis reply as per-token facts (indexes are token positions)."""
    tokens = [str(t) for t in raw.get("tokens", [])]
    if not tokens:
        raise CommandFailed("the daemon's analysis holds no tokens")
    count = len(tokens)
    token_ids = [int(i) for i in _array(raw.get("token_ids")).tolist()] or [-1] * count
    special_raw = raw.get("special")
    special = [bool(s) for s in special_raw] if isinstance(special_raw, Sequence) else [False] * count
    scores = raw.get("scores") or {}
    positions = [int(p) for p in _array(scores.get("positions")).tolist()]
    probs = _array(scores.get("probs")).astype(float).tolist()
    ranks = _array(scores.get("ranks")).astype(int).tolist()
    entropy = _array(scores.get("entropy")).astype(float).tolist()
    topk_ids = _array(scores.get("topk_ids")).astype(int).tolist()
    topk_probs = _array(scores.get("topk_probs")).astype(float).tolist()
    topk_tokens = scores.get("topk_tokens") or raw.get("topk_tokens") or []

    analysis = Analysis(
        model=str(raw.get("model") or model),
        result_id=raw.get("result_id"),
        tokens=tokens,
        token_ids=token_ids,
        special=special,
        probabilities=[None] * count,
        ranks=[None] * count,
        entropy=[None] * count,
        alternatives=[[] for _ in range(count)],
        alternative_ids=[[] for _ in range(count)],
        n_layers=int(raw.get("n_layers") or 0),
        target_positions=positions,
    )
    for n, position in enumerate(positions):
        if not 0 <= position < count:
            continue
        analysis.probabilities[position] = probs[n] if n < len(probs) else None
        analysis.ranks[position] = ranks[n] if n < len(ranks) else None
        analysis.entropy[position] = entropy[n] if n < len(entropy) else None
        ids = topk_ids[n] if n < len(topk_ids) else []
        texts = topk_tokens[n] if n < len(topk_tokens) else [f"#{i}" for i in ids]
        chances = topk_probs[n] if n < len(topk_probs) else []
        analysis.alternative_ids[position] = list(ids)
        analysis.alternatives[position] = [
            Alternative(str(t), float(p)) for t, p in zip(texts, chances, strict=False)
        ]
    if raw.get("rankings") is not None:
        analysis.rankings = _array(raw.get("rankings"))
    for name, entry in (raw.get("attributions") or {}).items():
        values = entry.get("values") if isinstance(entry, Mapping) else entry
        if values is not None:
            analysis.attributions[str(name)] = _array(values)
    return analysis


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


def token_data(analysis: Analysis) -> list[dict[str, Any]]:
    return [
        {"text": t, "id": i, "is_input": True, "special": s}
        for t, i, s in zip(analysis.tokens, analysis.token_ids, analysis.special, strict=True)
    ]


def probability_view(analysis: Analysis) -> dict[str, Any]:
    top = [
        [{"text": a.token, "id": i, "prob": a.probability} for a, i in zip(alts, ids, strict=False)] or None
        for alts, ids in zip(analysis.alternatives, analysis.alternative_ids, strict=True)
    ]
    return {
        "tokens": token_data(analysis),
        "probs": analysis.probabilities,
        "top": top,
        "ranks": analysis.ranks,
        "entropy": analysis.entropy,
    }


def saliency_view(analysis: Analysis) -> dict[str, Any] | None:
    methods = []
    for name, values in analysis.attributions.items():
        if values.ndim == 2 and values.shape[0] == len(analysis.target_positions):
            methods.append({"name": name, "targets": analysis.target_positions, "values": values})
    return {"tokens": token_data(analysis), "methods": methods} if methods else None


def rankings_view(analysis: Analysis) -> dict[str, Any] | None:
    if analysis.rankings is None or analysis.rankings.ndim != 2 or analysis.rankings.shape[1] == 0:
        return None
    return {
        "tokens": token_data(analysis),
        "targets": analysis.target_positions,
        "ranks": analysis.rankings,
        "layer_labels": [f"Layer {i}" for i in range(analysis.rankings.shape[0])],
    }


def render_spec(analysis: Analysis, nmf: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The RenderSpec the panel draws: tabs of every view this analysis filled."""
    tabs: list[dict[str, Any]] = [
        {"title": "Probability", "view": "probability", "data": probability_view(analysis)}
    ]
    saliency = saliency_view(analysis)
    if saliency is not None:
        tabs.append({"title": "Saliency", "view": "saliency", "data": saliency})
    if analysis.layer_predictions is not None:
        tabs.append(
            {
                "title": "Layer predictions",
                "view": "layer_predictions",
                "data": analysis.layer_predictions,
                "options": {"live": True},
            }
        )
    rankings = rankings_view(analysis)
    if rankings is not None:
        tabs.append({"title": "Rankings", "view": "rankings", "data": rankings})
    if nmf is not None:
        tabs.append({"title": "Neuron factors", "view": "nmf", "data": nmf, "options": {"live": True}})
    return {"view": "tabs", "data": to_plain({"tabs": tabs}), "options": {"live": True}}


# ---------------------------------------------------------------------------------------- recompute

NMF_K_RANGE = (1, 20)
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
    except (KeyError, TypeError, ValueError) as exc:
        raise BadArguments(f"ecco.recompute: bad parameters for {view}: {exc}") from exc
    raise BadArguments(f"ecco.recompute: no view {view!r}; known: layer-predictions, nmf, rankings-watch")


def view_reply(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    """The view's own fields from the daemon's ``view`` reply."""
    data = answer.get("data")
    return data if isinstance(data, Mapping) else answer


def _labels(count: int) -> list[str]:
    return [f"Layer {i}" for i in range(count)]


def layer_predictions_entry(analysis: Analysis, reply: Mapping[str, Any]) -> dict[str, Any]:
    """One predicted position of the layer_predictions view from the daemon's (L, k) top lists."""
    position = int(reply["position"])
    ids = _array(reply.get("token_ids")).astype(int).tolist()
    texts = reply.get("tokens") or [[f"#{i}" for i in row] for row in ids]
    probs = _array(reply.get("probs")).astype(float).tolist()
    actual = analysis.token_ids[position] if position < len(analysis.token_ids) else None
    layers = []
    for row_ids, row_texts, row_probs in zip(ids, texts, probs, strict=False):
        top = [
            {"text": str(t), "id": int(i), "prob": float(p), "rank": r + 1}
            for r, (i, t, p) in enumerate(zip(row_ids, row_texts, row_probs, strict=False))
        ]
        entry: dict[str, Any] = {"top": top}
        if actual is not None:
            entry["target"] = next((c for c in top if c["id"] == actual), None)
        layers.append(entry)
    return {"position": position, "layers": layers}


def layer_predictions_view(
    analysis: Analysis, entries: list[dict[str, Any]], selected: int
) -> dict[str, Any]:
    layers = len(entries[0]["layers"]) if entries else analysis.n_layers
    return {
        "tokens": token_data(analysis),
        "layer_labels": _labels(layers),
        "positions": sorted(entries, key=lambda e: e["position"]),
        "selected": selected,
    }


def nmf_view(analysis: Analysis, reply: Mapping[str, Any]) -> dict[str, Any]:
    reply = view_reply(reply)
    factors = _array(reply.get("factors"))
    layers = _array(reply.get("layers")).astype(int).tolist() or [0]
    return {
        "tokens": token_data(analysis),
        "k": int(reply.get("n_components", factors.shape[0])),
        "factors": factors,
        "from_layer": min(layers),
        "to_layer": max(layers),
        "k_range": list(NMF_K_RANGE),
    }


def rankings_watch_view(analysis: Analysis, reply: Mapping[str, Any]) -> dict[str, Any]:
    ids = _array(reply.get("watch_ids")).astype(int).tolist()
    texts = reply.get("watch_tokens") or [f"#{i}" for i in ids]
    ranks = _array(reply.get("rankings"))
    return {
        "tokens": token_data(analysis),
        "position": int(reply["position"]),
        "watch": [{"text": str(t), "id": int(i)} for t, i in zip(texts, ids, strict=False)],
        "ranks": ranks,
        "layer_labels": _labels(ranks.shape[0] if ranks.ndim == 2 else 0),
    }


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
    return to_plain(rankings_watch_view(analysis, answer))
