"""Ecco's analyses through the real daemon, from the Python client, for all three families."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import ecco_client

EXECUTORS = ("thread", "ray")  # every test here also runs on model replicas (tests/service/conftest.py)
# Under [ray], one replica per model: this module loads four models, and spreading over replicas is
# test_replicas.py's business; here the same analyses must give the same results on a replica.
RAY_REPLICAS = 1


@pytest.fixture(scope="module")
def client(daemon, tiny_model_factory):
    with ecco_client.connect(connection_file=daemon.connection_file, timeout=30) as c:
        for family in ("gpt2", "bert", "t5"):
            c.load_model(str(tiny_model_factory(family)), name=f"tiny-{family}", attn_implementation="eager")
        yield c


def test_analyze_scores_every_token_after_the_first_and_attributions_sum_to_one(client):
    out = client.model().analyze("the cat sat on the mat", attribution=["grad_x_input", "integrated_gradients"],
                                 steps=16)
    scores = out.analysis["scores"]
    T = len(out.tokens)
    assert list(np.asarray(scores["positions"])) == list(range(1, T))
    assert np.all((np.asarray(scores["probs"]) > 0) & (np.asarray(scores["probs"]) <= 1))
    for method in ("grad_x_input", "integrated_gradients"):
        values = np.asarray(out.analysis["attributions"][method]["values"])
        assert values.shape == (T - 1, T)
        np.testing.assert_allclose(values.sum(axis=1), 1.0, rtol=1e-4)
        # A token is attributed only to the tokens before it.
        for row, position in enumerate(range(1, T)):
            assert np.all(values[row, position:] == 0)
    view = out.primary_attributions("grad_x_input", style="detailed")
    expected = out.analysis["attributions"]["grad_x_input"]["values"]
    np.testing.assert_allclose(view.data["methods"][0]["values"], expected)
    assert view.options["style"] == "detailed"


def test_generate_with_attribution_attributes_the_generated_tokens(client):
    out = client.model().generate("hello world", generate=4, attribution=["gradient"])
    n_new = len(out.token_ids) - out.n_input_tokens
    assert list(np.asarray(out.analysis["target_positions"])) == list(range(out.n_input_tokens, len(out.token_ids)))
    values = np.asarray(out.analysis["attributions"]["gradient"]["values"])
    assert values.shape == (n_new, len(out.token_ids))
    ignored = out.primary_attributions("gradient", ignore_tokens=[0]).data["methods"][0]["values"]
    assert np.all(ignored[:, 0] == 0)
    np.testing.assert_allclose(ignored.sum(axis=1), 1.0, rtol=1e-4)


def test_views_from_the_stored_run_agree_with_the_first_reply(client):
    out = client.model().analyze("one two three four five")
    scores = out.analysis["scores"]
    position = int(np.asarray(scores["positions"])[-1])
    lens = out.layer_predictions(position=position, topk=3)
    assert [e["position"] for e in lens.data["positions"]] == list(range(1, len(out.tokens) + 1))  # every one
    assert lens.data["selected"] == position
    asked: list[str] = []

    class Counting:  # the real client, counting what the output asks the daemon
        def call(self, op, params=None):
            asked.append(op)
            return client.call(op, params)

    other = replace(out, client=Counting()).layer_predictions(position=1, topk=3)
    assert asked == [] and other.data["selected"] == 1  # another position: no request, every position kept
    assert other.data["positions"] == lens.data["positions"]
    replace(out, client=Counting()).layer_predictions(position=1, topk=2)
    assert asked == ["view"]  # other parameters: asked anew
    last_layer = next(e for e in lens.data["positions"] if e["position"] == position)["layers"][-1]["top"]
    # The logit lens at the last layer is the model's own distribution at that position.
    assert [c["id"] for c in last_layer] == list(np.asarray(scores["topk_ids"])[-1][:3])
    ranks = out.rankings().data["ranks"]
    np.testing.assert_array_equal(np.asarray(ranks)[-1], np.asarray(scores["ranks"]))
    watched = out.rankings_watch([int(out.token_ids[position])], position=position)
    assert np.asarray(watched.data["ranks"])[-1, 0] == np.asarray(scores["ranks"])[-1]
    nmf2, nmf3 = out.run_nmf(n_components=2), out.run_nmf(n_components=3)
    assert nmf2.factors.shape == (2, len(out.tokens)) and nmf3.factors.shape == (3, len(out.tokens))
    assert nmf2.explore().view == "nmf"
    assert out.cka(1, 1) == pytest.approx(1.0, abs=1e-5)


def test_attention_on_a_model_loaded_the_default_way_gives_rows_that_sum_to_one(client):
    # The tiny Llama is loaded without eager attention: the daemon records with its eager twin.
    recorded = client.model().analyze("a b c d", attention=True)
    later = client.model().analyze("a b c d")  # no attention kept: the view records it when asked
    for out in (recorded, later):
        view = out.attention(layer=0, head=1)
        weights = np.asarray(view.data["attention"])
        assert view.data["layers"] == [0] and view.data["heads"] == [1]
        assert weights.shape == (1, 1, len(out.tokens), len(out.tokens))
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(recorded.attention().data["attention"], later.attention().data["attention"], atol=1e-6)
    eager = client.model("tiny-gpt2").analyze("a b c d", attention=True).attention()
    assert len(eager.data["layers"]) == eager.data["attention"].shape[0] == 2


def test_masked_model_attributes_the_mask_prediction(client):
    out = client.model("tiny-bert").analyze("the cat [MASK] on the mat", attribution=["grad_x_input"])
    assert out.analysis["family"] == "masked"
    positions = list(np.asarray(out.analysis["target_positions"]))
    assert len(positions) == 1 and out.tokens[positions[0]].strip() == "[MASK]"
    values = np.asarray(out.analysis["attributions"]["grad_x_input"]["values"])
    np.testing.assert_allclose(values.sum(axis=1), 1.0, rtol=1e-4)
    lens = out.layer_predictions(position=positions[0], topk=2)
    assert [e["position"] for e in lens.data["positions"]] == list(range(len(out.tokens)))  # masked: every token
    assert len(lens.data["positions"][0]["layers"]) == out.analysis["n_layers"]
    with pytest.raises(ecco_client.RemoteError) as info:
        client.model("tiny-bert").generate("the cat", generate=2)
    assert info.value.code == "UNSUPPORTED_MODEL"


def test_encoder_decoder_generates_and_attributes_across_encoder_and_decoder(client):
    out = client.model("tiny-t5").generate("translate the cat", generate=3, attribution=["grad_x_input"])
    analysis = out.analysis
    assert analysis["family"] == "encoder-decoder"  # spelled as models.list spells it
    n_encoder = analysis["n_encoder"]
    values = np.asarray(analysis["attributions"]["grad_x_input"]["values"])
    assert values.shape[1] == len(analysis["tokens"]) > n_encoder
    assert np.all(values[:, :n_encoder].sum(axis=1) > 0)  # every output token draws on the encoder's input
    np.testing.assert_allclose(values.sum(axis=1), 1.0, rtol=1e-4)


def test_bad_analysis_requests_get_stable_codes(client):
    with pytest.raises(ecco_client.BadRequest) as info:
        client.model().analyze("a b c", attribution=["nonsense"])
    assert "valid" in info.value.message and "grad_x_input" in info.value.message
    out = client.model().analyze("a b c")
    with pytest.raises(ecco_client.BadRequest, match="'position' must be at most 4"):
        client.call("view", {"result_id": out.result_id, "view": "layer_predictions", "params": {"position": 999}})
    with pytest.raises(ValueError, match="valid positions are 1..4"):
        out.layer_predictions(position=999)
    with pytest.raises(ecco_client.NotFound):
        client.call("view", {"result_id": "f" * 32, "view": "rankings"})
    with pytest.raises(ecco_client.BadRequest):
        client.call("view", {"result_id": out.result_id, "view": "nope"})


def test_reduced_backward_precision_through_the_daemon(client):
    text = "one two three four five six seven eight nine ten eleven twelve"
    full = client.model().generate(text, generate=10, attribution=["grad_x_input"])
    reduced = client.model().generate(text, generate=10, attribution=["grad_x_input"], backward_precision="reduced")
    assert list(reduced.token_ids) == list(full.token_ids)  # the forward, so generation, is untouched
    a = np.asarray(full.analysis["attributions"]["grad_x_input"]["values"])
    b = np.asarray(reduced.analysis["attributions"]["grad_x_input"]["values"])
    assert a.shape == b.shape and np.abs(a - b).max() < 0.02
    with pytest.raises(ecco_client.BadRequest) as info:
        client.model().analyze("a b c", attribution=["gradient"], backward_precision="half")
    assert "reduced" in info.value.message


def test_rankings_skipped_in_the_first_reply_are_computed_when_asked(client):
    text = "one two three four five six"
    eager = client.model().analyze(text)
    lazy = client.model().analyze(text, rankings=False)
    assert lazy.analysis["rankings"] is None
    np.testing.assert_array_equal(lazy.rankings().data["ranks"], eager.rankings().data["ranks"])
    assert lazy.analysis["rankings"] is not None  # kept for later views


def test_float16_on_the_wire(client):
    out = client.model().analyze("one two three four five six seven eight nine ten", attribution=["gradient"],
                                 array_dtype="float16")
    lens = client.call("view", {"result_id": out.result_id, "view": "layer_predictions",
                                "params": {"position": 3, "topk": 50}, "array_dtype": "float16"})
    assert np.asarray(lens["data"]["probs"]).dtype == np.float16


def test_terminal_explain_prints_probability_and_saliency(daemon):
    import subprocess
    import sys

    command = [sys.executable, "-m", "ecco_client.cli", "--connection-file", str(daemon.connection_file),
               "explain", "the cat sat on the mat", "--attribution", "grad_x_input"]
    env = {"COLUMNS": "120", "PATH": "", "PYTHONPATH": ":".join(sys.path)}  # this checkout's code, not an install
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("the cat sat on the mat") == 2
    assert "probability: 0%" in done.stdout and "grad_x_input: what drove" in done.stdout
