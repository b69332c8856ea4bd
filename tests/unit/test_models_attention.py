"""The eager twin: attention weights from a model loaded the default way, the shared model untouched."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.recomputed_attention import RecomputedAttention
from ecco_daemon.analysis.service import analyze, with_attention
from ecco_daemon.models.attention import attention_model, returns_attention
from tests.tiny_models import load_tiny_model


@pytest.fixture(scope="module")
def sdpa_llama():
    return load_tiny_model("llama", attn_implementation=None)  # the loader's default: sdpa


def test_the_twin_shares_every_weight_and_leaves_the_model_as_it_was(sdpa_llama) -> None:
    model, tokenizer = sdpa_llama
    twin = attention_model(model)
    assert twin is not model and attention_model(model) is twin  # made once
    assert model.config._attn_implementation == "sdpa" and not returns_attention(model)
    assert returns_attention(twin) and attention_model(twin) is twin
    for (name, ours), (twin_name, theirs) in zip(model.named_parameters(), twin.named_parameters(), strict=True):
        assert name == twin_name and ours is theirs
    ids = torch.tensor([tokenizer("The capital of France is Paris").input_ids])
    with torch.no_grad():
        shared, eager = model(ids, output_attentions=True), twin(ids, output_attentions=True)
    assert not shared.attentions  # sdpa gives none: why the twin exists
    torch.testing.assert_close(eager.logits, shared.logits, atol=1e-5, rtol=1e-5)
    assert eager.attentions[0].shape[-1] == ids.shape[1]


def test_attention_of_a_default_loaded_model_equals_an_eager_loaded_ones(sdpa_llama) -> None:
    model, tokenizer = sdpa_llama
    eager_model, _ = load_tiny_model("llama", attn_implementation="eager")
    ids = tokenizer("The quick brown fox jumps").input_ids
    run = analyze(model, tokenizer, ids, AnalysisOptions(attention=True))
    reference = analyze(eager_model, tokenizer, ids, AnalysisOptions(attention=True))
    np.testing.assert_allclose(run.attention["self"], reference.attention["self"], atol=1e-6)
    np.testing.assert_allclose(run.hidden, reference.hidden, atol=1e-5)

    kept_without = analyze(model, tokenizer, ids, AnalysisOptions())
    given = with_attention(model, kept_without)
    assert kept_without.attention is None  # the stored run is left as it was
    np.testing.assert_allclose(given.attention["self"], reference.attention["self"], atol=1e-6)
    assert with_attention(model, run) is run


def test_a_runs_recomputed_attention_is_remembered_for_its_next_views(sdpa_llama) -> None:
    model, tokenizer = sdpa_llama
    ids = tokenizer("The quick brown fox jumps").input_ids
    kept_without = analyze(model, tokenizer, ids, AnalysisOptions())
    first = with_attention(model, kept_without).attention
    assert with_attention(model, kept_without).attention is first  # no second forward
    other = analyze(model, tokenizer, ids, AnalysisOptions())  # same tokens, another run: its own forward
    assert with_attention(model, other).attention is not first


def test_remembered_attention_stays_within_its_bytes_and_goes_with_its_run() -> None:
    cache = RecomputedAttention(max_bytes=3_000)
    computed: list[str] = []

    class Run:
        pass

    def weights(name: str) -> Callable[[], dict[str, np.ndarray]]:
        def compute() -> dict[str, np.ndarray]:
            computed.append(name)
            return {"self": np.zeros(250, dtype=np.float32)}  # 1,000 bytes
        return compute

    runs = [Run() for _ in range(4)]
    for i in range(4):
        cache.get(runs[i], weights(f"r{i}"))
    assert cache.nbytes == 3_000  # r0, the least recently used, went out
    cache.get(runs[1], weights("again"))
    cache.get(runs[0], weights("r0 again"))
    assert computed == ["r0", "r1", "r2", "r3", "r0 again"]
    del runs[:]
    assert cache.nbytes == 0  # nothing outlives its run
    cache.get(Run(), lambda: {"self": np.zeros(1_000, dtype=np.float32)})  # 4,000 bytes: over the bound
    assert cache.nbytes == 0
