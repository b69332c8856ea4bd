"""The daemon-facing layer: one analysis per request, then every view answered from the stored run."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from ecco_daemon.analysis.errors import InvalidArgument, UnknownName
from ecco_daemon.analysis.methods import ATTRIBUTION_METHODS
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.sequence import build_sequence
from ecco_daemon.analysis.service import VIEWS, analyze, architecture_for, run_result, view
from ecco_daemon.models.family import MASKED
from ecco_daemon.models.tokens import encode_prompt
from tests.tiny_models import load_tiny_model


def _packable(value) -> bool:
    """msgpack-able once numpy arrays are sent as binary (as the wire codec does)."""

    def default(obj):
        if isinstance(obj, np.ndarray):
            return obj.tobytes()
        if isinstance(obj, np.generic):
            return obj.item()
        raise TypeError(type(obj))

    msgpack.packb(value, default=default)
    return True


@pytest.fixture(scope="module")
def gpt2():
    model, tokenizer = load_tiny_model("gpt2")
    ids = encode_prompt(tokenizer, "The capital of France is Paris.")
    run = analyze(model, tokenizer, ids, AnalysisOptions(attribution=("grad_x_input", "ig"), steps=8, attention=True))
    return model, tokenizer, run


def test_architecture_is_inspected_once_per_model(gpt2) -> None:
    model, _tokenizer, run = gpt2
    assert architecture_for(model) is architecture_for(model) is run.arch


def test_first_result_and_every_view_are_wire_ready(gpt2) -> None:
    _model, tokenizer, run = gpt2
    result = run_result(run, tokenizer, float16=True)
    assert result["tokens"][:3] == ["The", " capital", " of"]
    assert result["attribution_methods"] == ["grad_x_input", "integrated_gradients"]
    assert len(result["scores"]["topk_tokens"]) == run.seq.n_targets
    assert result["special"] == [i in tokenizer.all_special_ids for i in run.seq.token_ids.tolist()]
    assert view(run, tokenizer, "layer-predictions", {"position": 2})["position"] == 2
    assert _packable(result)
    requests = {
        "layer_predictions": {"position": 3, "topk": 4},
        "rankings": {},
        "rankings_watch": {"watch": [" Berlin", 17], "position": 5},
        "nmf": {"n_components": 3, "components": True},
        "attention": {"layer": 1, "head": 0},
        "primary_attributions": {"attr_method": "ig", "ignore_tokens": [0]},
        "states": {"what": "hidden", "layers": [-1]},
    }
    assert set(requests) == set(VIEWS)
    for name, params in requests.items():
        reply = view(run, tokenizer, name, {**params, "float16": True})
        assert _packable(reply), name
    predictions = view(run, tokenizer, "layer_predictions", {"position": 3, "topk": 4})
    assert predictions["probs"].shape == (2, 4) and len(predictions["tokens"][0]) == 4
    watch = view(run, tokenizer, "rankings_watch", {"watch": [" Berlin", 17], "position": 5})
    assert watch["watch_ids"][0] == tokenizer(" Berlin", add_special_tokens=False).input_ids[0]
    attributions = view(run, tokenizer, "primary_attributions", {"attr_method": "ig", "ignore_tokens": [0]})
    assert (attributions["values"][:, 0] == 0).all()
    sums = attributions["values"].sum(axis=1)  # the first output token had only token 0 to explain it
    np.testing.assert_allclose(sums, [0.0] + [1.0] * (len(sums) - 1), atol=1e-5)
    rankings = view(run, tokenizer, "rankings", {})
    assert rankings["output_tokens"] == run.tokens[1:] and rankings["input_tokens"] == run.tokens[:-1]


def test_bad_view_requests_name_what_is_valid(gpt2) -> None:
    _model, tokenizer, run = gpt2
    with pytest.raises(UnknownName, match="layer_predictions"):
        view(run, tokenizer, "saliency_map", {})
    with pytest.raises(InvalidArgument, match="unknown parameter"):
        view(run, tokenizer, "nmf", {"k": 3})
    with pytest.raises(InvalidArgument, match="exactly one of position or positions"):
        view(run, tokenizer, "layer_predictions", {})
    with pytest.raises(InvalidArgument) as several:  # never cut silently to its first piece
        view(run, tokenizer, "rankings_watch", {"watch": [" Marie Curie"], "position": 2})
    assert "is 11 tokens (' ', 'M'" in str(several.value) and "and 5 more" in str(several.value)
    assert len(str(several.value)) < 300


def test_layer_predictions_for_several_positions_equal_each_alone(gpt2) -> None:
    _model, tokenizer, run = gpt2
    every = view(run, tokenizer, "layer_predictions", {"positions": [1, 3, len(run.tokens)], "topk": 3})
    assert [entry["position"] for entry in every["positions"]] == [1, 3, len(run.tokens)]
    for entry in every["positions"]:
        alone = view(run, tokenizer, "layer_predictions", {"position": entry["position"], "topk": 3})
        np.testing.assert_array_equal(entry["token_ids"], alone["token_ids"])
        np.testing.assert_allclose(entry["probs"], alone["probs"])
    assert every["positions"][-1]["actual"] is None  # the token after the text is not known


def test_layer_predictions_say_where_the_actual_token_stands_at_every_layer(gpt2) -> None:
    _model, tokenizer, run = gpt2
    rankings = run.layer_rankings()  # (L, N)
    for column, position in enumerate(run.seq.target_positions.tolist()):
        reply = view(run, tokenizer, "layer_predictions", {"position": position, "topk": 2})
        actual = reply["actual"]
        assert actual["id"] == run.seq.token_ids[position] and actual["token"] == run.tokens[position]
        np.testing.assert_array_equal(actual["ranks"], rankings[:, column])
        for layer, rank in enumerate(actual["ranks"]):
            if rank <= 2:  # in the top-k: the same token and probability there
                assert reply["token_ids"][layer, rank - 1] == actual["id"]
                assert reply["probs"][layer, rank - 1] == pytest.approx(actual["probs"][layer])
    with pytest.raises(UnknownName, match="grad_x_input"):
        AnalysisOptions(attribution=("shap",))  # refused where the request's options are built
    assert "occlusion" in ATTRIBUTION_METHODS


def test_each_family_builds_its_sequence() -> None:
    bert, bert_tokenizer = load_tiny_model("bert")
    ids = encode_prompt(bert_tokenizer, "The [MASK] sat.")
    run = analyze(bert, bert_tokenizer, ids, AnalysisOptions(attribution=("gradient",)))
    assert run.seq.family == MASKED and run.scores.ranks[0] == 1
    t5, t5_tokenizer = load_tiny_model("t5")
    arch = architecture_for(t5)
    with pytest.raises(InvalidArgument, match="output tokens"):
        build_sequence(arch, t5_tokenizer, [5, 6])
    seq = build_sequence(arch, t5_tokenizer, [5, 6], target_ids=[7, 8])
    assert seq.token_ids.tolist() == [5, 6, arch.decoder_start_token_id, 7, 8]
    llama, llama_tokenizer = load_tiny_model("llama")
    with pytest.raises(InvalidArgument, match="at least two tokens"):
        analyze(llama, llama_tokenizer, [0])
    run = analyze(llama, llama_tokenizer, [0, 5, 6, 7], AnalysisOptions(attribution=("occlusion",)), first_target=2)
    assert run.seq.target_positions.tolist() == [2, 3]
