"""View requests through the real daemon: parameters checked before any work, and the layer
similarities computed by the client from the daemon's stored states, over one text or a corpus."""

from __future__ import annotations

import time

import numpy as np
import pytest

import ecco_client
from ecco_client import similarity

TEXTS = [
    "The capital of France is Paris. The capital of Germany is Berlin.",
    "The quick brown fox jumps over the lazy dog.",
    "She said that he would come back tomorrow morning with the books.",
    "Transformers use attention, layers, heads, and neurons to compute their outputs.",
]


@pytest.fixture(scope="module")
def out(daemon_client):
    return daemon_client.model().analyze(TEXTS[0])


def test_a_huge_to_layer_answers_bad_request_at_once_with_a_short_message(daemon_client, out):
    started = time.perf_counter()
    with pytest.raises(ecco_client.BadRequest) as info:
        daemon_client.call("view", {"result_id": out.result_id, "view": "nmf",
                             "params": {"n_components": 2, "to_layer": 20_000_000}})
    assert time.perf_counter() - started < 2.0
    assert "to_layer" in info.value.message and len(info.value.message) < 200
    assert daemon_client.ping()  # and the daemon serves on


def test_foils_outside_the_vocabulary_are_refused_before_running(daemon_client):
    for foils in ([1_000_000], [-5]):
        with pytest.raises(ecco_client.BadRequest, match="'foils' must lie in"):
            daemon_client.model().analyze("a b c", attribution=["contrastive"], foils=foils)
    with pytest.raises(ecco_client.BadRequest, match="'foils' has 40 entries for 4 tokens"):
        daemon_client.model().analyze("a b c", attribution=["contrastive"], foils=[3] * 40)


def test_a_foil_given_as_text_is_the_same_as_its_token_id(daemon_client):
    lm = daemon_client.model()
    pieces = lm.encode_tokens(["b", " Marie Curie"], add_special_tokens=False)["input_ids"]
    assert len(pieces[0]) == 1 and len(pieces[1]) > 1
    by_id = lm.analyze("a b c", attribution=["contrastive"], foils=pieces[0])
    by_text = lm.analyze("a b c", attribution=["contrastive"], foils="b")
    for out in (by_id, by_text):
        saliency = out.primary_attributions("contrastive").data["methods"][0]
        assert [f["id"] for f in saliency["foils"]] == list(pieces[0]) * len(saliency["targets"])
    np.testing.assert_array_equal(by_text.analysis["attributions"]["contrastive"]["values"],
                                  by_id.analysis["attributions"]["contrastive"]["values"])
    generated = lm.generate("a b", generate=2, attribution=["contrastive"], foils=["b"])
    assert generated.analysis["attributions"]["contrastive"]["foil_tokens"] == ["b", "b"]
    for implied in (lm.analyze("a b c", foils="b"), lm.generate("a b", generate=2, foils=["b"])):  # no method named
        assert list(implied.analysis["attributions"]) == ["contrastive"]
    for op in ("analyze", "generate"):
        with pytest.raises(ecco_client.BadRequest) as info:
            if op == "analyze":
                lm.analyze("a b c", attribution=["contrastive"], foils=[" Marie Curie"])
            else:
                lm.generate("a b", generate=2, attribution=["contrastive"], foils=[" Marie Curie"])
        assert f"foil ' Marie Curie' is {len(pieces[1])} tokens" in info.value.message
        assert "one piece" in info.value.message


def test_a_watched_text_of_several_tokens_is_refused_saying_so(out):
    with pytest.raises(ecco_client.BadRequest) as info:
        out.rankings_watch([" Marie Curie"], position=3)
    assert "is 11 tokens" in info.value.message and "single tokens" in info.value.message


def test_similarity_is_the_client_math_on_the_stored_states(out):
    hidden = out.states("hidden", [0, 1])  # (2, T, H)
    x, y = hidden[0].T, hidden[1].T
    assert out.cka(0, 1) == pytest.approx(similarity.cka(x, y), rel=1e-9)
    assert out.cca(0, 1, dims=4) == pytest.approx(similarity.cca(x, y, dims=4), rel=1e-9)
    assert out.svcca(0, 1, dims=3) == pytest.approx(similarity.svcca(x, y, dims=3), rel=1e-9)
    assert out.cka(1, 1) == pytest.approx(1.0, abs=1e-9)


def test_too_few_tokens_says_how_many_are_needed(out):
    n_tokens = len(out.tokens)
    with pytest.raises(ValueError, match=rf"cca needs at least 97 tokens for 48 \+ 48 neurons .* got {n_tokens}"):
        out.cca(0, 1)
    with pytest.raises(ValueError, match="Pass dims="):
        out.pwcca(0, 1)
    with pytest.raises(ValueError, match=rf"svcca needs at least 41 tokens .* got {n_tokens}"):
        out.svcca(0, 1)  # 20 SVD components each: it used to answer 1.0 for any two layers
    with pytest.raises(ValueError, match="takes no dims"):
        out.similarity("cka", 0, 1, dims=3)


def test_a_corpus_stacks_the_tokens_of_texts_and_stored_results(daemon_client, out):
    lm = daemon_client.model()
    others = [lm.analyze(text) for text in TEXTS[1:]]
    stacked = [np.concatenate([o.states("hidden", [layer])[0].T for o in [out, *others]], axis=1) for layer in (0, 1)]
    expected = similarity.cca(stacked[0], stacked[1], dims=12)
    assert lm.similarity([out, *TEXTS[1:]], "cca", 0, 1, dims=12) == pytest.approx(expected, rel=1e-9)
    assert lm.similarity([out, *others], "pwcca", 0, 1, dims=12) == pytest.approx(
        similarity.pwcca(stacked[0], stacked[1], dims=12), rel=1e-9)
    with pytest.raises(ValueError, match="method is one of"):
        lm.similarity([out], "mutual_information", 0, 1)
