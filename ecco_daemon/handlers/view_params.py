"""Every view's parameters, read and checked against the model and the stored run before any work.

Why: a view's parameters size what it allocates and index the stored arrays. ``to_layer=2e7`` once built
a list that long and an error naming each missing layer (an 89 MB reply that stalled other users). Here
each parameter is checked against the run's own bounds when the request arrives, with messages of
bounded length, and the analyses then trust what they are given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ecco_daemon.analysis.run import AnalysisRun
from ecco_daemon.server.errors import bad_request
from ecco_daemon.server.params import ParamReader

MAX_TOPK = 100  # as the analysis options' topk
MAX_WATCH = 256  # watched tokens per rankings_watch
MAX_WATCH_TEXT = 200  # characters of one watched text
MAX_NMF_COMPONENTS = 100


@dataclass(frozen=True)
class RunBounds:
    """What a view may index in one stored run, on the model it came from."""

    n_layers: int
    n_tokens: int
    vocab_size: int
    predictable: tuple[int, int]  # the first and last predicted position (layer predictions, rankings_watch)
    activation_layers: tuple[int, ...]  # the layers whose MLP activations were kept
    heads: int | None  # attention heads per layer, when the model says
    attention_kinds: tuple[str, ...]

    @classmethod
    def of(cls, run: AnalysisRun, config: Any) -> RunBounds:
        positions = run.seq.predictable_positions()
        heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None)
        kinds = ("self", "cross", "encoder") if run.seq.n_encoder else ("self",)
        return cls(
            n_layers=int(run.hidden.shape[0]),
            n_tokens=run.seq.n_tokens,
            vocab_size=int(run.arch.vocab_size or 0),
            predictable=(positions[0], positions[-1]) if positions else (0, -1),
            activation_layers=tuple(int(i) for i in run.activation_layers),
            heads=int(heads) if isinstance(heads, int) else None,
            attention_kinds=kinds,
        )


def check_view_params(view: str, params: dict[str, Any], bounds: RunBounds) -> dict[str, Any]:
    """The view's parameters, checked; BAD_REQUEST names the first one out of bounds."""
    check = CHECKS.get(view.replace("-", "_"))
    if check is None:
        raise bad_request(f"unknown view {view[:64]!r}; valid: {', '.join(sorted(CHECKS))}")
    known, reader = check
    read = ParamReader(params, [*known, "float16"])
    checked = reader(read, bounds)
    if "float16" in params:
        checked["float16"] = read.bool("float16")
    return checked


# ------------------------------------------------------------------------------------------ the views


def _layer_predictions(read: ParamReader, b: RunBounds) -> dict[str, Any]:
    if ("position" in read.params) == ("positions" in read.params):
        raise bad_request("give exactly one of 'position' or 'positions'")
    checked: dict[str, Any] = {"topk": read.int("topk", 10, minimum=1, maximum=_topk_limit(b))}
    if "position" in read.params:
        checked["position"] = _position(read, "position", b)
    else:
        checked["positions"] = _int_list(read, "positions", b.predictable, b.n_tokens + 1, "predicted positions")
    if read.params.get("layer") is not None:
        checked["layer"] = _layer(read, "layer", b)
    return checked


def _rankings(read: ParamReader, b: RunBounds) -> dict[str, Any]:
    return {}


def _rankings_watch(read: ParamReader, b: RunBounds) -> dict[str, Any]:
    watch = read.params.get("watch")
    if not isinstance(watch, list) or not 1 <= len(watch) <= MAX_WATCH:
        raise bad_request(f"'watch' must be a list of 1 to {MAX_WATCH} token ids or texts", field="watch")
    for item in watch:
        if isinstance(item, str):
            if not 1 <= len(item) <= MAX_WATCH_TEXT:
                raise bad_request(f"a watched text has 1 to {MAX_WATCH_TEXT} characters", field="watch")
        elif isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < b.vocab_size:
            raise bad_request(f"a watched token id lies in 0..{b.vocab_size - 1}", field="watch")
    return {"watch": list(watch), "position": _position(read, "position", b)}


def _nmf(read: ParamReader, b: RunBounds) -> dict[str, Any]:
    checked: dict[str, Any] = {
        "n_components": read.int("n_components", 10, minimum=1, maximum=MAX_NMF_COMPONENTS),
        "components": read.bool("components", False),
    }
    recorded = b.activation_layers
    if not recorded:
        return checked  # the run refuses: it kept no activations
    low, high = min(recorded), max(recorded)
    if read.params.get("from_layer") is not None:
        checked["from_layer"] = read.int("from_layer", minimum=low, maximum=high)
    if read.params.get("to_layer") is not None:
        checked["to_layer"] = read.int("to_layer", minimum=low + 1, maximum=high + 1)
    return checked


def _attention(read: ParamReader, b: RunBounds) -> dict[str, Any]:
    layer = read.params.get("layer")
    if isinstance(layer, list):
        if not layer:  # the weights of no layer would stack nothing
            raise bad_request("'layer' names at least one layer", field="layer")
        checked: dict[str, Any] = {"layer": _int_list(read, "layer", (-b.n_layers, b.n_layers - 1), b.n_layers,
                                                      "layers")}
    else:
        checked = {"layer": _layer(read, "layer", b)}
    if read.params.get("head") is not None:  # unknown head counts are checked by the run
        checked["head"] = read.int("head", minimum=-b.heads, maximum=b.heads - 1) if b.heads else read.int("head")
    checked["kind"] = read.choice("kind", b.attention_kinds, "self")
    return checked


def _primary_attributions(read: ParamReader, b: RunBounds) -> dict[str, Any]:
    checked: dict[str, Any] = {"attr_method": read.str("attr_method", "grad_x_input", max_length=64)}
    if read.params.get("ignore_tokens") is not None:
        checked["ignore_tokens"] = _int_list(read, "ignore_tokens", (0, b.n_tokens - 1), b.n_tokens, "positions")
    return checked


def _states(read: ParamReader, b: RunBounds) -> dict[str, Any]:
    checked: dict[str, Any] = {"what": read.choice("what", ["hidden", "embedding", "activations"])}
    if read.params.get("layers") is not None:
        checked["layers"] = _int_list(read, "layers", (-b.n_layers, b.n_layers - 1), b.n_layers, "layers")
    return checked


Reader = Callable[[ParamReader, RunBounds], dict[str, Any]]
CHECKS: dict[str, tuple[tuple[str, ...], Reader]] = {
    "layer_predictions": (("position", "positions", "topk", "layer"), _layer_predictions),
    "rankings": ((), _rankings),
    "rankings_watch": (("watch", "position"), _rankings_watch),
    "nmf": (("n_components", "from_layer", "to_layer", "components"), _nmf),
    "attention": (("layer", "head", "kind"), _attention),
    "primary_attributions": (("attr_method", "ignore_tokens"), _primary_attributions),
    "states": (("what", "layers"), _states),
}


# ------------------------------------------------------------------------------------------- pieces


def _topk_limit(b: RunBounds) -> int:
    return min(MAX_TOPK, b.vocab_size) if b.vocab_size else MAX_TOPK


def _position(read: ParamReader, name: str, b: RunBounds) -> int:
    first, last = b.predictable
    return int(read.int(name, minimum=first, maximum=last))


def _layer(read: ParamReader, name: str, b: RunBounds) -> int:
    return int(read.int(name, minimum=-b.n_layers, maximum=b.n_layers - 1))


def _int_list(read: ParamReader, name: str, span: tuple[int, int], longest: int, what: str) -> list[int]:
    """A list of at most ``longest`` integers, each within ``span`` (inclusive)."""
    value = read.params.get(name)
    low, high = span
    if not isinstance(value, list | np.ndarray) or len(value) > longest:
        raise bad_request(f"'{name}' must be a list of at most {longest} {what} in {low}..{high}", field=name)
    values = read.int_list(name)
    if any(v < low or v > high for v in values):
        raise bad_request(f"'{name}' must hold {what} in {low}..{high}", field=name)
    return [int(v) for v in values]
