"""Neuron activations at the MLP activation point, NMF with Ecco's settings, and attention weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning

from ecco_daemon.analysis.architecture import capture_io, inspect_architecture
from ecco_daemon.analysis.errors import InvalidArgument, NotCaptured
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.run import run_analysis
from tests.analysis_inputs import text_sequence
from tests.tiny_models import FAMILIES, load_tiny_model

TEXT = {"bert": "The [MASK] sat on the mat.", "t5": "The cat sat on the mat."}
TARGET = {"t5": "Paris is nice."}


def _run(family: str, **options):
    model, tokenizer = load_tiny_model(family)
    arch = inspect_architecture(model)
    seq = text_sequence(
        arch, tokenizer, TEXT.get(family, "The cat sat on the mat."), target=TARGET.get(family)
    )
    return model, arch, run_analysis(model, arch, tokenizer, seq, AnalysisOptions(**options))


@pytest.mark.parametrize("family", FAMILIES)
def test_activations_at_every_position_feed_the_down_projection(family: str) -> None:
    model, arch, run = _run(family)
    n_tokens = run.seq.n_tokens
    assert run.activations.shape == (arch.n_layers, n_tokens, arch.decoder.intermediate_size)
    assert run.activation_layers.tolist() == list(range(arch.n_layers))
    # Independent check: the down projection applied to the recorded activations gives its recorded output.
    downs = {str(i): m for i, m in enumerate(arch.decoder.mlp_down)}
    embeds = arch.input_embedding(torch.as_tensor(run.seq.token_ids))[None]
    from ecco_daemon.analysis.sequence import model_kwargs

    with torch.no_grad(), capture_io(downs, inputs=False) as outputs:
        model(**model_kwargs(run.seq, embeds))
    rows = slice(run.seq.n_encoder, None)  # decoder positions for T5
    for i, module in enumerate(arch.decoder.mlp_down):
        acts = torch.as_tensor(run.activations[i, rows])
        with torch.no_grad():
            torch.testing.assert_close(module(acts), outputs[str(i)][0], atol=1e-5, rtol=1e-5)
    assert np.abs(run.activations[:, -1]).sum() > 0  # the last position is recorded (Ecco missed it)


def test_chosen_layers_only() -> None:
    _model, _arch, run = _run("llama", activation_layers=[-1])
    assert run.activation_layers.tolist() == [1] and run.activations.shape[0] == 1
    with pytest.raises(InvalidArgument, match="layer 5 out of range"):
        _run("llama", activation_layers=[5])
    _model, _arch, none = _run("llama", activations=False)
    with pytest.raises(NotCaptured):
        none.nmf(2)


def test_nmf_matches_sklearn_with_ecco_settings() -> None:
    _model, arch, run = _run("gpt2")
    result = run.nmf(n_components=3, from_layer=0, to_layer=2)
    merged = np.concatenate([run.activations[0], run.activations[1]], axis=1)  # (positions, neurons)
    reference = NMF(n_components=3, init="random", random_state=0, max_iter=500)
    factors = reference.fit_transform(np.maximum(merged, 0)).T
    assert result.factors.shape == (3, run.seq.n_tokens)
    assert result.components.shape == (3, 2 * arch.decoder.intermediate_size)
    np.testing.assert_allclose(result.factors, factors, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.components, reference.components_, rtol=1e-4, atol=1e-5)
    assert (result.factors >= 0).all()
    one_layer = run.nmf(n_components=2, from_layer=1, to_layer=2)
    assert (
        one_layer.layers.tolist() == [1] and one_layer.components.shape[1] == arch.decoder.intermediate_size
    )
    assert run.nmf(n_components=50).n_components == run.seq.n_tokens  # capped at the positions, as Ecco
    with pytest.raises(InvalidArgument, match="from_layer < to_layer"):
        run.nmf(2, from_layer=1, to_layer=1)
    with pytest.raises(InvalidArgument, match="<= 2 .the recorded layers"):
        run.nmf(2, from_layer=0, to_layer=4)
    with pytest.raises(InvalidArgument) as huge:  # refused before any list of that size is built
        run.nmf(2, from_layer=0, to_layer=20_000_000)
    assert len(str(huge.value)) < 200


@pytest.mark.parametrize("family", FAMILIES)
def test_attention_weights_per_layer_and_head(family: str) -> None:
    model, arch, run = _run(family, attention=True)
    weights = run.attention["self"]
    heads = model.config.num_attention_heads if family != "t5" else model.config.num_heads
    rows = run.seq.n_rows
    assert weights.shape == (arch.n_layers, heads, rows, rows)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    if run.seq.family != "masked":  # causal self-attention never looks ahead
        assert np.allclose(np.triu(weights, k=1), 0)
    assert run.attention_weights(1, 2).shape == (rows, rows)
    np.testing.assert_array_equal(run.attention_weights(1)[2], weights[1, 2])
    if family == "t5":
        assert run.attention["cross"].shape == (arch.n_layers, heads, rows, run.seq.n_encoder)
        assert run.attention["encoder"].shape[-1] == run.seq.n_encoder
    with pytest.raises(InvalidArgument, match="head 9"):
        run.attention_weights(0, 9)


def test_attention_needs_eager_attention() -> None:
    model, tokenizer = load_tiny_model("llama", attn_implementation="sdpa")
    arch = inspect_architecture(model)
    seq = text_sequence(arch, tokenizer, "The cat sat.")
    with pytest.raises(NotCaptured, match="eager"):
        run_analysis(model, arch, tokenizer, seq, AnalysisOptions(attention=True))
    run = run_analysis(model, arch, tokenizer, seq)
    with pytest.raises(NotCaptured, match="attention=True"):
        run.attention_weights(0)


def test_the_nmf_solver_is_sklearns_coordinate_descent_also_when_its_work_is_capped() -> None:
    """A wide input stops after the work budget: exactly where sklearn's solver is after that many
    iterations (inseq-style: two routes to one number)."""
    from ecco_daemon.analysis.nmf_solver import factorize, iteration_cap

    rng = np.random.default_rng(0)
    x = np.maximum(rng.standard_normal((30, 4000)), 0).astype(np.float32)
    x[:, :3] *= 40  # a few dominant neurons, as real MLP activations have
    budget = 30 * 4000 * 25
    cap = iteration_cap(x.shape, budget=budget)
    assert cap == 25
    ours = factorize(x, 4, budget=budget)
    reference = NMF(n_components=4, init="random", random_state=0, max_iter=cap)
    with pytest.warns(ConvergenceWarning):
        w = reference.fit_transform(x)
    assert ours.n_iter == reference.n_iter_ == cap
    np.testing.assert_allclose(ours.w, w, rtol=1e-3, atol=1e-3 * w.max())
    np.testing.assert_allclose(ours.h, reference.components_, rtol=1e-3, atol=1e-3 * reference.components_.max())
    assert ours.reconstruction_error == pytest.approx(reference.reconstruction_err_, rel=1e-5)
