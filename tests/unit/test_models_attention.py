"""The eager twin: attention weights from a model loaded the default way, the shared model untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecco_daemon.analysis.options import AnalysisOptions
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
