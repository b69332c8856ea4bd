"""The daemon's analysis replies as the renderer's view data (protocol/VIEWS.md).

Why one module: the reply layout is the daemon's (``analyze`` and ``view`` in PROTOCOL.md) and the
view layout is the renderer's; ``Output`` in notebooks and the language server in editors both turn
one into the other here, so a view looks the same on every surface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecco_client.exceptions import ProtocolError

NMF_K_RANGE = (1, 20)  # the factor counts a live explorer offers


def view_reply(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    """The view's own fields from the daemon's ``view`` reply."""
    data = answer.get("data")
    return data if isinstance(data, Mapping) else answer


@dataclass(frozen=True)
class Alternative:
    token: str
    probability: float


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
    foils: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # contrastive method -> (N,) TokenRefs
    layer_predictions: dict[str, Any] | None = None  # the layer_predictions view data so far
    n_encoder: int = 0  # encoder tokens at the front (encoder-decoder models)
    family: str = "causal"  # as models.list spells it: causal, masked or encoder-decoder

    def predictable_positions(self) -> list[int]:
        """The positions a layer prediction can be asked for (PROTOCOL.md's predicted positions)."""
        if self.family == "masked":
            return list(range(len(self.tokens)))
        return list(range(self.n_encoder + 1, len(self.tokens) + 1))


def _array(value: Any) -> np.ndarray:
    return np.asarray(value) if value is not None else np.zeros(0)


def read_analysis(raw: Mapping[str, Any], model: str) -> Analysis:
    """The analysis reply as per-token facts (indexes are token positions)."""
    tokens = [str(t) for t in raw.get("tokens", [])]
    if not tokens:
        raise ProtocolError("the daemon's analysis holds no tokens")
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
        n_encoder=int(raw.get("n_encoder") or 0),
        family=str(raw.get("family") or "causal"),
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
        refs = foil_refs(entry) if isinstance(entry, Mapping) else None
        if refs is not None:
            analysis.foils[str(name)] = refs
    return analysis


def foil_refs(entry: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The foil of each target as TokenRefs, from an attribution's ``foils`` ids and ``foil_tokens`` texts."""
    if entry.get("foils") is None:
        return None
    ids = _array(entry["foils"]).astype(int).tolist()
    texts = entry.get("foil_tokens") or [f"#{i}" for i in ids]
    return [{"text": str(t), "id": int(i)} for t, i in zip(texts, ids, strict=False)]


def saliency_method(name: str, targets: Sequence[int], values: np.ndarray,
                    foils: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One entry of the saliency view's ``methods``; a contrastive one carries its ``foils``."""
    method: dict[str, Any] = {"name": name, "targets": [int(t) for t in targets], "values": values}
    if foils is not None:
        method["foils"] = foils
    return method


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
            methods.append(saliency_method(name, analysis.target_positions, values, analysis.foils.get(name)))
    return {"tokens": token_data(analysis), "methods": methods} if methods else None


def rankings_view(analysis: Analysis) -> dict[str, Any] | None:
    if analysis.rankings is None or analysis.rankings.ndim != 2 or analysis.rankings.shape[1] == 0:
        return None
    return {
        "tokens": token_data(analysis),
        "targets": analysis.target_positions,
        "ranks": analysis.rankings,
        "layer_labels": _labels(analysis.rankings.shape[0]),
    }


def _labels(count: int) -> list[str]:
    return [f"Layer {i}" for i in range(count)]


def layer_predictions_entry(analysis: Analysis, reply: Mapping[str, Any]) -> dict[str, Any]:
    """One predicted position of the layer_predictions view from the daemon's (L, k) top lists."""
    position = int(reply["position"])
    ids = _array(reply.get("token_ids")).astype(int).tolist()
    texts = reply.get("tokens") or [[f"#{i}" for i in row] for row in ids]
    probs = _array(reply.get("probs")).astype(float).tolist()
    targets = _actual_targets(reply.get("actual"), len(ids))
    actual = analysis.token_ids[position] if position < len(analysis.token_ids) else None
    layers = []
    ranks = range(1, len(ids[0]) + 1) if ids else range(0)
    for n, (row_ids, row_texts, row_probs) in enumerate(zip(ids, texts, probs, strict=False)):
        # tolist() gave ints and floats, msgpack strs: no conversion per entry (a view of every position
        # of a long text holds tens of thousands of them)
        top = [
            {"text": t, "id": i, "prob": p, "rank": r}
            for r, i, t, p in zip(ranks, row_ids, row_texts, row_probs, strict=False)
        ]
        entry: dict[str, Any] = {"top": top}
        if targets is not None:
            entry["target"] = targets[n]
        elif actual is not None:  # a daemon that sends no "actual": known only where it made the top-k
            entry["target"] = next((c for c in top if c["id"] == actual), None)
        layers.append(entry)
    return {"position": position, "layers": layers}


def _actual_targets(actual: Any, n_layers: int) -> list[dict[str, Any]] | None:
    """The actual token at every layer (text, id, probability, rank) from the reply's ``actual``."""
    if not isinstance(actual, Mapping):
        return None
    probs = _array(actual.get("probs")).astype(float).tolist()
    ranks = _array(actual.get("ranks")).astype(int).tolist()
    text, token_id = str(actual.get("token", "")), int(actual["id"])
    return [{"text": text, "id": token_id, "prob": p, "rank": r} for p, r in zip(probs, ranks, strict=False)][
        :n_layers]


def layer_predictions_entries(analysis: Analysis, reply: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every predicted position of a reply to ``positions`` (or the one of a reply to ``position``)."""
    replies = reply["positions"] if "positions" in reply else [reply]
    return [layer_predictions_entry(analysis, one) for one in replies]


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
        "positions": analysis.predictable_positions(),
    }


def attention_view(analysis: Analysis, reply: Mapping[str, Any],
                   tokens: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The attention view from the daemon's reply: weights as (layers, heads, Q, K) slices.

    The reply's ``layer`` is one index or a list, its ``head`` one index or None (every head); a single
    one is sent as a one-element slice, as protocol/VIEWS.md asks. ``tokens`` are the decoder's own
    (self-attention); ``n_layers`` lets a live panel offer the layers it did not embed.
    """
    reply = view_reply(reply)
    weights = _array(reply.get("weights")).astype(np.float32)
    layer, head = reply.get("layer"), reply.get("head")
    layers = [int(i) for i in _array(layer).reshape(-1).tolist()]
    if np.ndim(layer) == 0:
        weights = weights[None]  # (1, ...)
    if head is not None:
        weights = weights[:, None]  # (La, 1, Q, K)
    if weights.ndim != 4:
        raise ProtocolError(f"the daemon's attention weights have shape {weights.shape}")
    heads = [int(head)] if head is not None else list(range(weights.shape[1]))
    tokens = token_data(analysis)[analysis.n_encoder:] if tokens is None else tokens
    return {"tokens": tokens, "layers": layers, "heads": heads, "attention": weights, "n_layers": analysis.n_layers}


def rankings_watch_defaults(analysis: Analysis) -> tuple[int, list[int]]:
    """The position and token ids a rankings-watch tab starts with: the last explained token, its own id
    first, then the model's top alternatives there (ids, so no text can be several tokens)."""
    position = analysis.target_positions[-1] if analysis.target_positions else len(analysis.tokens) - 1
    watch = [analysis.token_ids[position], *analysis.alternative_ids[position][:3]]
    return position, list(dict.fromkeys(i for i in watch if i >= 0))
