"""The analyses as the daemon's handlers call them: build a run for a request, answer views as plain dicts.

Why: handlers parse parameters and own the protocol; this module owns what an "analyze" run contains and
how each later view (``VIEWS``) turns a stored run into msgpack-able dicts of numpy arrays, so the
handler stays a few lines and the same view code serves the Python client and the editor.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from torch import nn

from ecco_daemon.analysis.architecture import Architecture, inspect_architecture
from ecco_daemon.analysis.attribution import Attribution
from ecco_daemon.analysis.capture import capture_forward
from ecco_daemon.analysis.errors import InvalidArgument, UnknownName, UnsupportedModel
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.progress import CancelCheck, ProgressSink
from ecco_daemon.analysis.recomputed_attention import RecomputedAttention
from ecco_daemon.analysis.run import AnalysisRun, as_wire_array, run_analysis
from ecco_daemon.analysis.sequence import build_sequence
from ecco_daemon.analysis.single_tokens import single_token_ids
from ecco_daemon.models.attention import NoEagerAttention, attention_model
from ecco_daemon.models.family import MASKED
from ecco_daemon.models.per_model import PerModel
from ecco_daemon.models.tokens import token_texts

# The model's architecture, inspected once (one probe forward) and cached while the model lives.
architecture_for: PerModel[Architecture] = PerModel(inspect_architecture)
# Attention of runs kept without it, from their first attention view (a few runs' worth, in bytes).
recomputed_attention = RecomputedAttention()


WATCH_ONE_TOKEN = ("rankings_watch ranks single tokens, since a layer predicts one token at a time: watch one "
                   "piece (its text or id), e.g. the first")


def attach(run: AnalysisRun, model: nn.Module) -> AnalysisRun:
    """A run read back from disk (after a restart) gets the architecture of its model, loaded again."""
    if run.arch is None:
        run.arch = architecture_for(model)
    return run


def analyze(
    model: nn.Module,
    tokenizer: Any,
    input_ids: Sequence[int],
    options: AnalysisOptions | None = None,
    *,
    first_target: int | None = None,
    target_ids: Sequence[int] | None = None,
    check_cancelled: CancelCheck | None = None,
    on_progress: ProgressSink | None = None,
) -> AnalysisRun:
    """One analysis run for a request; store the returned run and answer views from it."""
    arch = architecture_for(model)
    if options is not None:
        options = options.with_foil_ids(tokenizer)
    seq = build_sequence(arch, tokenizer, input_ids, first_target=first_target, target_ids=target_ids)
    recorder = recorder_for(model) if options is not None and options.attention else None
    return run_analysis(model, arch, tokenizer, seq, options, check_cancelled, recorder, on_progress)


def recorder_for(model: nn.Module) -> tuple[nn.Module, Architecture]:
    """The model whose forward returns attention weights (the shared one if it runs eager attention,
    else its eager twin over the same weights), with its architecture."""
    try:
        twin = attention_model(model)
    except NoEagerAttention as exc:
        raise UnsupportedModel(type(model).__name__, ["an eager attention path"], str(exc)) from None
    return twin, architecture_for(twin)


def with_attention(model: nn.Module, run: AnalysisRun) -> AnalysisRun:
    """The run itself when it recorded attention; else a copy given the weights of one recording forward
    over its tokens, remembered for the run's next views (``recomputed_attention``). The stored run is
    left as it is (the store counted its bytes when it was put)."""
    if run.attention is not None:
        return run

    def record() -> dict[str, np.ndarray]:
        forward_model, forward_arch = recorder_for(model)
        captured = capture_forward(forward_model, forward_arch, run.seq, activations=False, attention=True)
        assert captured.attention is not None
        return captured.attention

    return replace(run, attention=recomputed_attention.get(run, record))


# ---------------------------------------------------------------------------------------------- views


def run_result(run: AnalysisRun, tokenizer: Any, float16: bool = False) -> dict[str, Any]:
    """The first reply of an analysis: tokens, scores with alternatives' text, rankings, attributions."""
    result = run.summary(float16)
    result["scores"]["topk_tokens"] = [token_texts(tokenizer, row) for row in run.scores.topk_ids]
    for name, attribution in run.attributions.items():
        result["attributions"][name]["foil_tokens"] = _foil_tokens(tokenizer, attribution)
    result["attribution_methods"] = sorted(run.attributions)
    result["activation_layers"] = run.activation_layers
    result["has_attention"] = run.attention is not None
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    result["special"] = [int(i) in special for i in run.seq.token_ids]
    return result


def _foil_tokens(tokenizer: Any, attribution: Attribution) -> list[str] | None:
    """The text of each target's foil, so that a view can say "why X rather than Y"."""
    return None if attribution.foils is None else token_texts(tokenizer, attribution.foils.tolist())


def view_layer_predictions(
    run: AnalysisRun,
    tokenizer: Any,
    *,
    position: int | None = None,
    positions: Sequence[int] | None = None,
    topk: int = 10,
    layer: int | None = None,
    float16: bool = False,
) -> dict[str, Any]:
    """One predicted position's top-k at every layer; with ``positions``, ``{"positions": [that, ...]}``
    for each (what a page that lets any position be picked embeds)."""
    if (position is None) == (positions is None):
        raise InvalidArgument("give exactly one of position or positions")
    if positions is not None:
        return {"positions": [_layer_predictions_at(run, tokenizer, p, topk, layer, float16) for p in positions]}
    assert position is not None
    return _layer_predictions_at(run, tokenizer, position, topk, layer, float16)


def _layer_predictions_at(
    run: AnalysisRun, tokenizer: Any, position: int, topk: int, layer: int | None, float16: bool
) -> dict[str, Any]:
    predictions = run.layer_predictions(position, topk, layer)
    actual = None
    if predictions.actual_id is not None:
        actual = {
            "id": predictions.actual_id,
            "token": token_texts(tokenizer, [predictions.actual_id])[0],
            "probs": predictions.actual_probs,  # (L,)
            "ranks": predictions.actual_ranks,  # (L,) 1-based
        }
    return {
        "position": position,
        "layers": predictions.layers,
        "token_ids": predictions.token_ids,  # (L, k)
        "tokens": [token_texts(tokenizer, row) for row in predictions.token_ids],
        "probs": as_wire_array(predictions.probs, float16),  # (L, k)
        "actual": actual,  # where the token at ``position`` stands at each layer; None past the text
    }


def view_rankings(run: AnalysisRun, tokenizer: Any, *, float16: bool = False) -> dict[str, Any]:
    positions = run.seq.target_positions
    return {
        "rankings": run.layer_rankings(),  # (L, N)
        "positions": positions,
        "output_tokens": [run.tokens[int(p)] for p in positions],
        "input_tokens": [
            run.tokens[int(p) - 1] if run.seq.family != MASKED else run.tokens[int(p)] for p in positions
        ],
    }


def view_rankings_watch(
    run: AnalysisRun, tokenizer: Any, *, watch: Sequence[int | str], position: int, float16: bool = False
) -> dict[str, Any]:
    ids = single_token_ids(tokenizer, watch, "watch entry", WATCH_ONE_TOKEN)
    return {
        "position": position,
        "watch_ids": np.asarray(ids, dtype=np.int64),
        "watch_tokens": token_texts(tokenizer, ids),
        "rankings": run.rankings_watch(ids, position),  # (L, W)
    }


def view_nmf(
    run: AnalysisRun,
    tokenizer: Any,
    *,
    n_components: int = 10,
    from_layer: int | None = None,
    to_layer: int | None = None,
    components: bool = False,
    float16: bool = False,
    check_cancelled: CancelCheck | None = None,
) -> dict[str, Any]:
    result = run.nmf(n_components, from_layer, to_layer, check_cancelled)
    reply = {
        "factors": as_wire_array(result.factors, float16),  # (K, S)
        "layers": result.layers,
        "n_components": result.n_components,
        "n_neurons_per_layer": result.n_neurons_per_layer,
        "reconstruction_error": result.reconstruction_error,
        "tokens": run.tokens,
    }
    if components:
        reply["components"] = as_wire_array(result.components, float16)  # (K, La * I)
    return reply


def view_attention(
    run: AnalysisRun,
    tokenizer: Any,
    *,
    layer: int | Sequence[int],
    head: int | None = None,
    kind: str = "self",
    float16: bool = False,
) -> dict[str, Any]:
    """One layer's weights, (heads, Q, K) or one head's (Q, K); a list of layers gives (La, heads, Q, K)
    or (La, Q, K). A run that recorded no attention is given it first (``with_attention``, by the handler)."""
    if isinstance(layer, int):
        weights = run.attention_weights(layer, head, kind)
    else:
        weights = np.stack([run.attention_weights(one, head, kind) for one in layer])
    return {"layer": layer, "head": head, "kind": kind, "weights": as_wire_array(weights, float16)}


def view_primary_attributions(
    run: AnalysisRun,
    tokenizer: Any,
    *,
    attr_method: str = "grad_x_input",
    ignore_tokens: Sequence[int] = (),
    float16: bool = False,
) -> dict[str, Any]:
    """Attribution matrix of one method; ``ignore_tokens`` (positions) are dropped and rows renormalized."""
    attribution = run.attribution(attr_method)
    values = attribution.values.copy()  # (N, S)
    if ignore_tokens:
        values[:, [int(i) for i in ignore_tokens]] = 0
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    return {
        "method": attribution.method,
        "score": attribution.score,
        "values": as_wire_array(values, float16),
        "raw": as_wire_array(attribution.raw, float16),
        "target_positions": attribution.target_positions,
        "tokens": run.tokens,
        "convergence_delta": attribution.convergence_delta,
        "foils": attribution.foils,
        "foil_tokens": _foil_tokens(tokenizer, attribution),
    }


def view_states(
    run: AnalysisRun,
    tokenizer: Any,
    *,
    what: str,
    layers: Sequence[int] | None = None,
    float16: bool = False,
) -> dict[str, Any]:
    """A stored array fetched on demand (Ecco's hidden_states, embedding_states, activations): one kind
    per request, optionally some layers, so a reply stays as large as the caller chooses."""
    values, recorded = run.states(what, layers)
    return {
        "what": what,
        "layers": recorded,
        "values": as_wire_array(values, float16),  # (La, R, H), (1, R, H) or (La, S, I)
        "n_encoder": run.seq.n_encoder,
    }


VIEWS: dict[str, Callable[..., dict[str, Any]]] = {
    "layer_predictions": view_layer_predictions,
    "rankings": view_rankings,
    "rankings_watch": view_rankings_watch,
    "nmf": view_nmf,
    "attention": view_attention,
    "primary_attributions": view_primary_attributions,
    "states": view_states,
}


def view(run: AnalysisRun, tokenizer: Any, name: str, params: dict[str, Any],
         check_cancelled: CancelCheck | None = None) -> dict[str, Any]:
    """Answer view ``name`` from a stored run; unknown names or parameters are refused, naming valid ones.
    A view that runs long (NMF) takes ``check_cancelled`` too; it is the caller's, never a parameter."""
    fn = VIEWS.get(name.replace("-", "_"))  # "layer-predictions" is accepted too
    if fn is None:
        raise UnknownName("view", name, VIEWS)
    signature = inspect.signature(fn).parameters
    accepted = [p for p in signature if p not in ("run", "tokenizer", "check_cancelled")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InvalidArgument(
            f"unknown parameter(s) {', '.join(unknown)} for {name}; known: {', '.join(accepted)}"
        )
    missing = [p for p in accepted if signature[p].default is inspect.Parameter.empty and p not in params]
    if missing:
        raise InvalidArgument(f"{name} needs {', '.join(missing)}")
    cancellable = {"check_cancelled": check_cancelled} if "check_cancelled" in signature else {}
    return fn(run, tokenizer, **params, **cancellable)
