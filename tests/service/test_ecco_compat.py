"""Ecco's documented flows through ``from ecco_client import ecco`` against the real daemon (tiny models).

The flows (tests/ecco_flows.py) use only Ecco's API; here they run with the model name swapped for a
tiny model, and what they return is checked against the daemon's own numbers and the local tokenizer.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

import ecco_client
from ecco_client import ecco
from tests import ecco_flows
from tests.service.multiuser_support import add_user


@pytest.fixture(scope="module", autouse=True)
def users_connection_file(daemon):
    """The flows call ``from_pretrained(name)`` alone: the daemon is the one of the user's connection file."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ECCO_CONNECTION_FILE", str(daemon.connection_file))
        yield


@pytest.fixture(scope="module")
def model_name(tiny_llama) -> str:
    return str(tiny_llama)


@pytest.fixture(scope="module")
def local_tokenizer(tiny_llama):
    return AutoTokenizer.from_pretrained(tiny_llama)


def test_token_scores_and_layer_predictions(model_name):
    run = ecco_flows.token_scores_and_layer_predictions(ecco, model_name)
    output, n_layers = run["output"], run["lm"].model_config["n_layers"]
    assert len(run["every_layer"]) == n_layers
    for layer, rows in enumerate(run["every_layer"]):
        assert [r["ranking"] for r in rows] == [1, 2, 3, 4, 5] and {r["layer"] for r in rows} == {layer}
        probs = [float(r["prob"]) for r in rows]
        assert probs == sorted(probs, reverse=True)
    # Greedy decoding picks the model's top token: the last layer's top prediction (final norm applied).
    generated = output.output.tokens[output.n_input_tokens]
    assert run["last_layer"][0][0]["token"] == generated == run["every_layer"][-1][0]["token"]
    assert isinstance(output.token_ids, torch.Tensor) and output.token_ids.shape == (1, len(output.output.tokens))
    assert len(output.tokens[0]) == output.token_ids.shape[1]
    assert run["lm"].tokenizer.decode(output.token_ids[0]) == output.output_text
    assert run["view"].view == "layer_predictions" and "<script" in run["view"]._repr_html_()


def test_rankings_watch_on_ids_from_the_tokenizer(model_name, local_tokenizer):
    run = ecco_flows.rankings_watch_on_tokenizer_ids(ecco, model_name)
    n_layers = run["lm"].model_config["n_layers"]
    # Tokenized by the daemon, the ids are the local tokenizer's.
    assert run["watch"] == [local_tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (" is", " are")]
    ranks = run["watched"]["rankings"]
    assert ranks.shape == (n_layers, 3) and ranks.min() >= 1
    assert ranks[-1, 2] == 1  # the produced token ranks first at the last layer
    assert run["rankings"]["rankings"].shape == (n_layers, 1) and run["rankings"]["rankings"][-1, 0] == 1
    assert run["view"].view == "rankings_watch"


def test_primary_attributions_ig_and_grad_x_input_in_both_styles(model_name):
    run = ecco_flows.primary_attributions_both_styles(ecco, model_name)
    output = run["output"]
    for (method, style), view in run["views"].items():
        assert view.view == "saliency" and view.options["style"] == style, method
    assert list(run["attribution"]) == ["ig", "grad_x_input"]
    rows = run["data"]["attributions"]
    assert len(rows) == len(output.output.tokens) - output.n_input_tokens == 3
    for row, position in zip(rows, range(output.n_input_tokens, len(output.output.tokens)), strict=True):
        assert len(row) == position and sum(row) == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(np.concatenate(run["attribution"]["ig"]), np.concatenate(rows), rtol=1e-6)
    assert [t["type"] for t in run["data"]["tokens"]].count("output") == 3


def test_neuron_factors_over_all_layers_and_a_range(model_name):
    run = ecco_flows.neuron_factors(ecco, model_name)
    n_tokens = len(run["output"].output.tokens)
    assert run["every_layer"].components.shape == (4, n_tokens) and run["every_layer"].layers == [0, 1]
    assert run["some_layers"].components.shape == (3, n_tokens) and run["some_layers"].layers == [0]
    assert run["explorer"].view == "nmf"
    assert run["figure"].__class__.__name__ == "Figure"
    acts = run["activations"]["decoder"]
    assert acts.shape[:2] == (1, 2) and acts.shape[3] == n_tokens


def test_cca_between_embeddings_and_each_layer_on_a_long_text(model_name):
    run = ecco_flows.cca_embeddings_to_layers(ecco, model_name)
    assert isinstance(run["inputs"]["input_ids"], torch.Tensor)
    assert run["inputs"]["input_ids"].shape[1] > 2 * ecco_flows.NEURONS
    assert run["n_layers"] == 2 and all(0.0 < s <= 1.0 + 1e-6 for s in run["scores"])
    assert run["same"] == pytest.approx(1.0, abs=1e-4)
    output = run["output"]
    np.testing.assert_array_equal(output.hidden_states[0], output.embedding_states[0])
    np.testing.assert_array_equal(output.hidden_states[1:], output.decoder_hidden_states[:, 0])


def test_the_tokenizer_answers_as_the_local_one(model_name, local_tokenizer):
    tokenizer = ecco.from_pretrained(model_name, verbose=False).tokenizer
    texts = ["The cat sat on the mat.", "Paris"]
    assert tokenizer(texts[0]) == dict(local_tokenizer(texts[0]))
    assert tokenizer(texts)["input_ids"] == local_tokenizer(texts)["input_ids"]
    padded = tokenizer(texts, padding=True, return_tensors="np")
    reference = local_tokenizer(texts, padding=True, return_tensors="np")
    np.testing.assert_array_equal(padded["input_ids"], reference["input_ids"])
    np.testing.assert_array_equal(padded.attention_mask, reference["attention_mask"])
    ids = local_tokenizer(texts[0])["input_ids"]
    assert tokenizer.decode(ids) == local_tokenizer.decode(ids)
    assert tokenizer.convert_ids_to_tokens(ids) == local_tokenizer.convert_ids_to_tokens(ids)
    assert tokenizer.convert_ids_to_tokens(ids[1]) == local_tokenizer.convert_ids_to_tokens(ids[1])
    assert tokenizer.eos_token_id == local_tokenizer.eos_token_id and tokenizer.pad_token == local_tokenizer.pad_token
    with pytest.raises(ValueError, match="padding"):
        tokenizer(texts, return_tensors="pt")


def test_token_operations_refuse_bad_and_oversized_requests(daemon):
    with ecco_client.connect(connection_file=daemon.connection_file, timeout=30) as client:
        with pytest.raises(ecco_client.BadRequest, match=r"token ids must lie in \[0, "):
            client.call("tokens.decode", {"ids": [10**6]})
        with pytest.raises(ecco_client.BadRequest, match="unknown parameter"):
            client.call("tokens.encode", {"text": "a", "padding": True})
        with pytest.raises(ecco_client.BadRequest, match="'text' must be a list of strings"):
            client.call("tokens.encode", {"text": [1, 2]})
        with pytest.raises(ecco_client.RemoteError) as info:
            client.call("tokens.encode", {"text": ["a"] * 65})
        assert info.value.code == "TOO_LARGE"
        assert client.call("tokens.decode", {"ids": [[1, 2], []]})["text"][1] == ""


def test_a_user_who_may_not_load_is_told_so(daemon, tiny_model_factory):
    alice = add_user(daemon.state_dir, "alice-ecco")
    with pytest.raises(ecco_client.Forbidden, match="only an admin may load models"):
        ecco.from_pretrained(str(tiny_model_factory("gpt2")), connection_file=alice, verbose=False)
