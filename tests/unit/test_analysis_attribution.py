"""Attributions for all output tokens at once agree with captum run per token, as Ecco ran it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import InputXGradient, IntegratedGradients, Occlusion, Saliency

from ecco_daemon.analysis.architecture import inspect_architecture
from ecco_daemon.analysis.attribution import attribute, target_blocks
from ecco_daemon.analysis.errors import InvalidArgument, UnknownName
from ecco_daemon.analysis.methods import ATTRIBUTION_METHODS, get_attribution_method, register_attribution_method
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.sequence import TokenSequence, embed_tokens, model_kwargs
from tests.analysis_inputs import text_sequence
from tests.tiny_models import load_tiny_model

CASES = {
    "gpt2": ("The capital of France is Paris.", None),
    "llama": ("The quick brown fox jumps.", None),
    "gpt_neox": ("Hello world, the cat sat.", None),
    "bert": ("The capital of [MASK] is Paris.", None),
    "t5": ("The capital of France is", "Paris."),
}


@pytest.fixture(scope="module", params=list(CASES))
def setup(request):
    family = request.param
    model, tokenizer = load_tiny_model(family)
    arch = inspect_architecture(model)
    text, target = CASES[family]
    seq = text_sequence(arch, tokenizer, text, target=target)
    if family == "bert":  # attribute a fixed masked prediction
        seq = TokenSequence(seq.family, seq.token_ids, 0, seq.target_positions, np.array([42]))
    return family, model, arch, seq


def _row_forward(model, seq: TokenSequence, row: int, n_tokens: int | None = None, probs: bool = False):
    """Forward over (a prefix of) the embedded tokens returning one logits row (or, as Ecco's forward
    does, its softmax), for captum."""

    def forward(embeds: torch.Tensor) -> torch.Tensor:
        if seq.family == "causal":  # Ecco's way: the prefix, last row
            logits = model(inputs_embeds=embeds, use_cache=False).logits[:, -1, :]
        else:
            logits = model(**model_kwargs(seq, embeds)).logits[:, row, :]
        return torch.softmax(logits, dim=-1) if probs else logits

    return forward


def _reference(model, arch, seq: TokenSequence, n: int, make, probs: bool = False, **kwargs):
    """captum attributions (S, H) for output token n, zero-padded to the whole sequence."""
    embeds = embed_tokens(arch, seq, torch.device("cpu")).unsqueeze(0)
    position, row = int(seq.target_positions[n]), int(seq.target_rows[n])
    inputs = embeds[:, :position] if seq.family == "causal" else embeds
    forward = _row_forward(model, seq, row, probs=probs)
    result = make(forward).attribute(inputs.clone(), target=int(seq.target_ids[n]), **kwargs)
    delta = None
    if isinstance(result, tuple):
        result, delta = result
    full = torch.zeros_like(embeds[0])
    full[: inputs.shape[1]] = result[0].detach()
    return full, delta


def _normalized(norms: torch.Tensor, mask: np.ndarray) -> np.ndarray:
    values = norms.numpy() * mask
    return values / values.sum()


@pytest.mark.parametrize(
    ("method", "captum_class"), [("gradient", Saliency), ("grad_x_input", InputXGradient)]
)
def test_gradient_methods_match_captum(setup, method, captum_class) -> None:
    _family, model, arch, seq = setup
    result = attribute(model, arch, seq, method)
    mask = seq.source_mask()
    for n in range(seq.n_targets):
        ref, _ = _reference(model, arch, seq, n, captum_class, probs=True)
        np.testing.assert_allclose(result.values[n], _normalized(ref.norm(dim=-1), mask[n]), atol=1e-4)
        np.testing.assert_allclose(result.raw[n], ref.norm(dim=-1).numpy() * mask[n], atol=1e-4, rtol=1e-4)


def test_integrated_gradients_match_captum_within_delta(setup) -> None:
    _family, model, arch, seq = setup
    result = attribute(model, arch, seq, "integrated_gradients")
    mask = seq.source_mask()
    for n in range(seq.n_targets):
        ref, delta = _reference(
            model, arch, seq, n, IntegratedGradients, probs=True, baselines=0.0, n_steps=50,
            return_convergence_delta=True,
        )
        ours = result.values[n]
        theirs = _normalized(ref.norm(dim=-1), mask[n])
        tolerance = max(1e-4, abs(float(delta)))
        assert np.abs(ours - theirs).max() <= tolerance
        assert abs(float(result.convergence_delta[n]) - float(delta)) <= max(1e-4, 1e-3 * abs(float(delta)))


def test_occlusion_matches_captum(setup) -> None:
    _family, model, arch, seq = setup
    result = attribute(model, arch, seq, "occlusion")
    assert result.score == "log_prob"
    mask = seq.source_mask()
    hidden = arch.hidden_size
    for n in range(seq.n_targets):

        def make(forward):
            return Occlusion(lambda e: torch.log_softmax(forward(e), dim=-1))

        ref, _ = _reference(model, arch, seq, n, make, sliding_window_shapes=(1, hidden), baselines=0.0)
        np.testing.assert_allclose(result.raw[n], ref[:, 0].numpy() * mask[n], atol=1e-4)
    assert np.allclose(result.values.sum(axis=1), 1.0, atol=1e-5)


def test_contrastive_matches_captum_on_logit_difference(setup) -> None:
    _family, model, arch, seq = setup
    foil = 7
    result = attribute(model, arch, seq, "contrastive", AnalysisOptions(foils=foil))
    assert result.score == "contrastive" and (result.foils == foil).all()
    embeds = embed_tokens(arch, seq, torch.device("cpu")).unsqueeze(0)
    mask = seq.source_mask()
    for n in range(seq.n_targets):
        row, target = int(seq.target_rows[n]), int(seq.target_ids[n])
        full = model(**model_kwargs(seq, embeds)).logits  # check: log p(t) - log p(f) == logit difference
        log_probs = torch.log_softmax(full[0, row], -1)
        assert torch.isclose(
            log_probs[target] - log_probs[foil], full[0, row, target] - full[0, row, foil], atol=1e-5
        )

        def difference(e, row=row, target=target):
            logits = model(**model_kwargs(seq, e)).logits[:, row, :]
            return logits[:, target] - logits[:, foil]

        ref = InputXGradient(difference).attribute(embeds.clone())[0].detach()
        np.testing.assert_allclose(result.values[n], _normalized(ref.norm(dim=-1), mask[n]), atol=1e-4)


@pytest.mark.parametrize("method", ["gradient", "grad_x_input", "integrated_gradients"])
def test_batched_equals_loop_and_chunking(setup, method) -> None:
    _family, model, arch, seq = setup
    batched = attribute(model, arch, seq, method, AnalysisOptions(steps=8))
    loop = attribute(model, arch, seq, method, AnalysisOptions(steps=8, batched=False))
    chunked = attribute(model, arch, seq, method, AnalysisOptions(steps=8, chunk_size=1, step_batch=3))
    assert not loop.used_vmap
    assert batched.used_vmap or seq.n_targets == 1
    np.testing.assert_allclose(batched.raw, loop.raw, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(batched.raw, chunked.raw, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("method", ["gradient", "grad_x_input", "integrated_gradients", "contrastive"])
def test_causal_blocks_over_prefixes_equal_one_pass_over_every_token(setup, method) -> None:
    family, model, arch, seq = setup
    foil = {"foils": 7} if method == "contrastive" else {}
    whole = attribute(model, arch, seq, method, AnalysisOptions(steps=6, block_size=seq.n_targets, **foil))
    for size in (1, 2, 3):
        blocked = attribute(model, arch, seq, method, AnalysisOptions(steps=6, block_size=size, **foil))
        np.testing.assert_allclose(blocked.raw, whole.raw, atol=1e-5, rtol=1e-4)
        np.testing.assert_allclose(blocked.values, whole.values, atol=1e-5)
        if method == "integrated_gradients":
            np.testing.assert_allclose(blocked.convergence_delta, whole.convergence_delta, atol=1e-5)
    if family in ("gpt2", "llama", "gpt_neox"):
        assert target_blocks(seq, 2)[0].n_tokens == int(seq.target_positions[1]) < seq.n_tokens
        assert [b.stop - b.start for b in target_blocks(seq, 2)][:-1] == [2] * ((seq.n_targets - 1) // 2)
    else:  # masked and encoder-decoder targets see every token: one block
        assert [(b.start, b.stop, b.n_tokens) for b in target_blocks(seq, 2)] == [(0, seq.n_targets, seq.n_tokens)]


def test_values_normalized_over_preceding_tokens(setup) -> None:
    _family, model, arch, seq = setup
    for method in ATTRIBUTION_METHODS:
        options = AnalysisOptions(steps=4, foils=3)
        result = attribute(model, arch, seq, method, options)
        assert result.values.shape == (seq.n_targets, seq.n_tokens)
        np.testing.assert_allclose(result.values.sum(axis=1), 1.0, atol=1e-5)
        assert (result.values >= 0).all()
        assert (result.values[~seq.source_mask()] == 0).all()
        if seq.family == "causal":
            for n, position in enumerate(seq.target_positions):
                assert (result.values[n, position:] == 0).all()


def test_model_is_left_untouched(setup) -> None:
    _family, model, arch, seq = setup
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    for method in ATTRIBUTION_METHODS:
        attribute(model, arch, seq, method, AnalysisOptions(steps=4, foils=3))
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]) and p.requires_grad == flags[name] and p.grad is None
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks and not module._backward_hooks
    assert model.get_input_embeddings() is arch.input_embedding
    assert not model.training


def test_registry_names_and_errors() -> None:
    assert set(ATTRIBUTION_METHODS) == {
        "gradient",
        "grad_x_input",
        "integrated_gradients",
        "occlusion",
        "contrastive",
    }
    assert get_attribution_method("ig").name == "integrated_gradients"
    assert get_attribution_method("saliency").name == "gradient"
    with pytest.raises(UnknownName) as info:
        get_attribution_method("lime")
    assert "lime" in str(info.value) and "grad_x_input" in str(info.value) and "occlusion" in str(info.value)
    with pytest.raises(ValueError, match="already registered"):
        register_attribution_method("gradient")(lambda *a: None)


def test_bad_requests_are_refused() -> None:
    model, tokenizer = load_tiny_model("gpt2")
    arch = inspect_architecture(model)
    seq = text_sequence(arch, tokenizer, "The cat sat on the mat.")
    with pytest.raises(InvalidArgument, match="foil"):
        attribute(model, arch, seq, "contrastive")
    with pytest.raises(InvalidArgument, match="foils must have"):
        attribute(model, arch, seq, "gradient", AnalysisOptions(foils=[1, 2]))
    with pytest.raises(UnknownName, match="valid: log_prob, logit, prob"):
        attribute(model, arch, seq, "gradient", AnalysisOptions(score="loss"))
    with pytest.raises(UnknownName, match="gausslegendre"):
        attribute(model, arch, seq, "integrated_gradients", AnalysisOptions(ig_method="simpson"))
    with pytest.raises(InvalidArgument, match="riemann_trapezoid needs at least 2 steps"):
        attribute(model, arch, seq, "integrated_gradients", AnalysisOptions(steps=1, ig_method="riemann_trapezoid"))


def test_falls_back_to_a_loop_when_vmap_fails(monkeypatch) -> None:
    model, tokenizer = load_tiny_model("llama")
    arch = inspect_architecture(model)
    seq = text_sequence(arch, tokenizer, "The cat sat on the mat.")
    expected = attribute(model, arch, seq, "grad_x_input")
    assert expected.used_vmap
    real_grad = torch.autograd.grad
    batched_calls = []

    def grad_without_vmap(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            batched_calls.append(1)
            raise RuntimeError("vmap: no batching rule for this operator")
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", grad_without_vmap)
    fallback = attribute(model, arch, seq, "grad_x_input", AnalysisOptions(chunk_size=2))
    assert batched_calls == [1]  # tried once, then remembered for the rest of the call
    assert not fallback.used_vmap
    np.testing.assert_allclose(fallback.raw, expected.raw, atol=1e-5, rtol=1e-4)


def test_cancellation_is_checked_between_chunks() -> None:
    model, tokenizer = load_tiny_model("gpt2")
    arch = inspect_architecture(model)
    seq = text_sequence(arch, tokenizer, "The cat sat on the mat.")
    calls = []

    class Stop(Exception):
        pass

    def check() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise Stop

    with pytest.raises(Stop):
        attribute(model, arch, seq, "integrated_gradients", AnalysisOptions(steps=8, step_batch=2), check)
    assert len(calls) == 2


def test_bfloat16_autocast_stays_close_and_leaves_weights_in_float32() -> None:
    model, tokenizer = load_tiny_model("llama")
    arch = inspect_architecture(model)
    seq = text_sequence(arch, tokenizer, "The quick brown fox jumps over the lazy dog.")
    exact = attribute(model, arch, seq, "grad_x_input")
    low = attribute(model, arch, seq, "grad_x_input", AnalysisOptions(autocast="bfloat16"))
    assert np.abs(low.values - exact.values).max() < 0.05
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with pytest.raises(UnknownName, match="bfloat16"):
        attribute(model, arch, seq, "gradient", AnalysisOptions(autocast="int8"))


@pytest.mark.parametrize("method", ["grad_x_input", "integrated_gradients"])
def test_reduced_precision_backward_stays_close_and_restores_the_global_flags(method) -> None:
    model, tokenizer = load_tiny_model("llama")
    arch = inspect_architecture(model)
    seq = text_sequence(arch, tokenizer, "The quick brown fox jumps over the lazy dog.")
    before = (torch.backends.mkldnn.matmul.fp32_precision, torch.backends.cuda.matmul.fp32_precision)
    exact = attribute(model, arch, seq, method, AnalysisOptions(steps=8))
    reduced = attribute(model, arch, seq, method, AnalysisOptions(steps=8, backward_precision="reduced"))
    assert (torch.backends.mkldnn.matmul.fp32_precision, torch.backends.cuda.matmul.fp32_precision) == before
    assert torch.backends.cuda.flash_sdp_enabled()  # the math-kernel choice did not outlive the call
    assert np.abs(reduced.values - exact.values).max() < 0.02
    assert not np.array_equal(reduced.raw, exact.raw)  # the reduced path really ran
    for n in range(seq.n_targets):
        width = int(seq.target_positions[n])
        rho = np.corrcoef(np.argsort(np.argsort(reduced.values[n, :width])),
                          np.argsort(np.argsort(exact.values[n, :width])))[0, 1] if width > 1 else 1.0
        assert rho > 0.9
    with pytest.raises(UnknownName, match="reduced"):
        attribute(model, arch, seq, "gradient", AnalysisOptions(backward_precision="half"))
