"""Every view parameter that sizes work or indexes a stored array is checked against the run first."""

from __future__ import annotations

import time

import pytest

from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.service import analyze
from ecco_daemon.handlers.view_params import RunBounds, check_view_params
from ecco_daemon.server.errors import OperationError
from tests.tiny_models import load_tiny_model


@pytest.fixture(scope="module")
def bounds() -> RunBounds:
    model, tokenizer = load_tiny_model("llama", attn_implementation=None)
    run = analyze(model, tokenizer, tokenizer("The capital of France is").input_ids, AnalysisOptions())
    return RunBounds.of(run, model.config)


def refused(view: str, params: dict, bounds: RunBounds) -> str:
    started = time.perf_counter()
    with pytest.raises(OperationError) as info:
        check_view_params(view, params, bounds)
    assert time.perf_counter() - started < 0.1
    assert info.value.code.value == "BAD_REQUEST" and len(info.value.message) < 200, info.value.message
    return info.value.message


def test_the_bounds_come_from_the_run_and_the_model(bounds: RunBounds) -> None:
    assert (bounds.n_layers, bounds.n_tokens, bounds.vocab_size) == (2, 6, 384)
    assert bounds.predictable == (1, 6) and bounds.activation_layers == (0, 1) and bounds.heads == 4


def test_a_huge_to_layer_is_refused_at_once_with_a_short_message(bounds: RunBounds) -> None:
    assert "'to_layer' must be at most 2" in refused("nmf", {"n_components": 2, "to_layer": 20_000_000}, bounds)


@pytest.mark.parametrize(
    ("view", "params", "says"),
    [
        ("nmf", {"from_layer": -5}, "'from_layer' must be at least 0"),
        ("nmf", {"n_components": 10**9}, "'n_components' must be at most 100"),
        ("nmf", {"n_components": 0}, "at least 1"),
        ("layer_predictions", {"position": 7}, "'position' must be at most 6"),
        ("layer_predictions", {"position": 0}, "at least 1"),
        ("layer_predictions", {"positions": list(range(10**6))}, "at most 7 predicted positions"),
        ("layer_predictions", {"positions": [1, 99]}, "predicted positions in 1..6"),
        ("layer_predictions", {"position": 2, "topk": 10**9}, "'topk' must be at most 100"),
        ("layer_predictions", {"position": 2, "layer": 2}, "'layer' must be at most 1"),
        ("layer_predictions", {"position": 2, "positions": [2]}, "exactly one of"),
        ("rankings_watch", {"watch": list(range(10**5)), "position": 2}, "1 to 256"),
        ("rankings_watch", {"watch": [10**6], "position": 2}, "0..383"),
        ("rankings_watch", {"watch": [-5], "position": 2}, "0..383"),
        ("rankings_watch", {"watch": ["x" * 10**6], "position": 2}, "1 to 200 characters"),
        ("rankings_watch", {"watch": [3], "position": 60}, "'position' must be at most 6"),
        ("primary_attributions", {"ignore_tokens": [6]}, "positions in 0..5"),
        ("primary_attributions", {"ignore_tokens": list(range(10**6))}, "at most 6 positions"),
        ("attention", {"layer": 9}, "'layer' must be at most 1"),
        ("attention", {"layer": 0, "head": 4}, "'head' must be at most 3"),
        ("attention", {"layer": list(range(10**6))}, "at most 2 layers"),
        ("attention", {"layer": 0, "kind": "cross"}, "'kind' must be one of self"),
        ("states", {"what": "hidden", "layers": [5]}, "layers in -2..1"),
        ("nmf", {"k": 3}, "unknown parameter(s) k"),
        ("similarity", {}, "unknown view 'similarity'"),
    ],
)
def test_out_of_bounds_parameters_are_refused_naming_the_bound(bounds, view, params, says) -> None:
    assert says in refused(view, params, bounds)


def test_parameters_within_bounds_pass_unchanged(bounds: RunBounds) -> None:
    assert check_view_params("nmf", {"n_components": 3, "from_layer": 0, "to_layer": 2}, bounds) == {
        "n_components": 3, "components": False, "from_layer": 0, "to_layer": 2}
    assert check_view_params("layer_predictions", {"positions": [1, 6], "float16": True}, bounds) == {
        "positions": [1, 6], "topk": 10, "float16": True}
    assert check_view_params("attention", {"layer": [0, -1], "head": None}, bounds) == {"layer": [0, -1],
                                                                                        "kind": "self"}
