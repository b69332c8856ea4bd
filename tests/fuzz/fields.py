"""Every operation's parameters, each with plausible values, and view parameters read from the views' hints.

Why a table: the fuzzer must cover every registered operation (``test_fuzz`` checks this table against
``OPERATIONS``), and plausible values get past the first checks into the work itself. ``CORE`` names the
parameters an operation needs to do anything; they are always sent (plausible or hostile).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import strategies as st

from ecco_daemon.analysis.methods import ALIASES, ATTRIBUTION_METHODS
from ecco_daemon.analysis.options import AUTOCAST_DTYPES, BACKWARD_PRECISIONS, SCORES
from ecco_daemon.analysis.service import VIEWS
from tests.fuzz.values import either, refs, small_ints, texts, token_ids

Strategy = st.SearchStrategy[Any]
METHODS = sorted([*ATTRIBUTION_METHODS, *ALIASES, "nope"])
WORDS = ["hidden", "activations", "embedding", "self", "cross", "encoder", "cca", "svcca", "pwcca", "cka",
         *METHODS]


def _one_of(values: Sequence[Any]) -> Strategy:
    return st.sampled_from(list(values))


ANALYSIS: dict[str, Strategy] = {
    "attribution": st.one_of(st.lists(_one_of(METHODS), max_size=3), _one_of(METHODS)),
    "steps": st.one_of(small_ints(0, 6), st.just(1000)),
    "foils": token_ids(),
    "score": _one_of([*SCORES, "nope"]),
    "activations": st.booleans(),
    "activation_layers": st.lists(small_ints(-3, 4), max_size=3),
    "attention": st.booleans(),
    "topk": small_ints(-1, 12),
    "autocast": _one_of([*AUTOCAST_DTYPES, "nope"]),
    "backward_precision": _one_of([*BACKWARD_PRECISIONS, "nope"]),
    "rankings": st.booleans(),
}
ARRAY_DTYPE = {"array_dtype": _one_of(["float32", "float16", "int8"])}
MODEL = {"model": refs("model")}
FLOATS = st.one_of(st.floats(0, 1.5), st.sampled_from([0.0, 1.0, 1e-7, -1.0]))

FIELDS: dict[str, dict[str, Strategy]] = {
    "ping": {},
    "status": {},
    "models.list": {},
    "shutdown": {},
    "analyze": {**MODEL, "text": texts(), "input_ids": token_ids(), "target": texts(), "target_ids": token_ids(),
                **ARRAY_DTYPE, **ANALYSIS},
    "generate": {**MODEL, "prompt": texts(), "input_ids": token_ids(), "generate": small_ints(-1, 6),
                 "do_sample": st.booleans(), "temperature": FLOATS, "top_k": small_ints(-1, 500), "top_p": FLOATS,
                 "seed": st.integers(-1, 2**63), "alternatives": small_ints(-1, 10), "stream": st.booleans(),
                 "analyze": st.booleans(), **ARRAY_DTYPE, **ANALYSIS},
    "view": {"result_id": refs("analysis"), "view": _one_of([*VIEWS, "layer-predictions", "nope"]),
             "params": st.just({}), **ARRAY_DTYPE},
    "tokens.encode": {**MODEL, "text": st.one_of(texts(), st.lists(texts(), max_size=3)),
                      "add_special_tokens": st.booleans()},
    "tokens.decode": {**MODEL, "ids": st.one_of(token_ids(), st.lists(token_ids(), max_size=3)),
                      "skip_special_tokens": st.booleans()},
    "cancel": {"target": refs("request")},
    "results.info": {"result_id": refs("result")},
    "results.release": {"result_id": refs("result")},
    "requests.reply": {"request_id": refs("request")},
    # Admin operations are sent signed by a plain user (FORBIDDEN) and, with harmless values, by the admin.
    "models.load": {"model": st.text(max_size=12).map("fuzz-".__add__), "name": st.text(max_size=8),
                    "dtype": _one_of(["auto", "float32", "float16", "bfloat16", "int8"]),
                    "device": _one_of(["cpu", "meta", "cuda", "cuda:7", "mps", "auto", "xla", ""]),
                    "attn_implementation": _one_of(["eager", "sdpa", "flash"]), "trust_remote_code": st.booleans()},
    "models.unload": {"model": st.text(max_size=12).map("fuzz-".__add__)},
}
# How often each operation is drawn: the ones with the most parameters and the most work behind them lead.
WEIGHTS = {"analyze": 6, "generate": 4, "view": 8, "tokens.encode": 2, "tokens.decode": 2}
CORE = {"analyze": ["text"], "generate": ["prompt"], "view": ["result_id", "view", "params"],
        "tokens.encode": ["text"], "tokens.decode": ["ids"], "cancel": ["target"], "results.info": ["result_id"],
        "results.release": ["result_id"], "requests.reply": ["request_id"], "models.load": ["model"],
        "models.unload": ["model"]}


def _hinted(hint: Any) -> Strategy:
    """Plausible values for a view parameter of type ``hint`` (ints near the run's sizes, known words)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([_hinted(arg) for arg in args])
    if origin is Sequence or origin is list:
        return st.lists(_hinted(args[0]), max_size=4)
    simple: dict[Any, Strategy] = {bool: st.booleans(), int: small_ints(-4, 12), str: _one_of(WORDS),
                                   type(None): st.none()}
    return simple.get(hint, st.none())


def view_params(view: str) -> Strategy:
    """``view``'s required parameters and some optional ones, each plausible or hostile (unknown views: {})."""
    fn: Callable[..., Any] | None = VIEWS.get(view.replace("-", "_"))
    if fn is None:
        return st.just({})
    hints = typing.get_type_hints(fn)
    required, optional = {}, {}
    for name, parameter in inspect.signature(fn).parameters.items():
        if name not in ("run", "tokenizer", "check_cancelled"):  # the caller's, never a request's
            group = required if parameter.default is inspect.Parameter.empty else optional
            group[name] = either(_hinted(hints[name]))
    return st.fixed_dictionaries(required, optional=optional)
