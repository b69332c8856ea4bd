"""Equal-length analyses share one forward pass and each gets exactly the run it would get alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecco_daemon.analysis import joint, service
from ecco_daemon.analysis.errors import InvalidArgument
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.run import AnalysisRun
from tests.tiny_models import load_tiny_model

LENGTH = 9


@pytest.fixture(scope="module", params=["gpt2", "llama", "gpt_neox"])
def causal(request):
    model, tokenizer = load_tiny_model(request.param, attn_implementation=None)  # the loader's default (sdpa)
    return model, tokenizer, service.architecture_for(model)


def _texts(vocab: int, n: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, LENGTH).tolist() for _ in range(n)]


def _forward_counter(model: torch.nn.Module) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    calls: list[int] = []
    return calls, model.register_forward_hook(lambda *_: calls.append(1))


def assert_same_run(joint_run: AnalysisRun, solo: AnalysisRun) -> None:
    np.testing.assert_array_equal(joint_run.seq.token_ids, solo.seq.token_ids)
    assert joint_run.tokens == solo.tokens
    for name in solo.scores.__dataclass_fields__:
        np.testing.assert_allclose(getattr(joint_run.scores, name), getattr(solo.scores, name), atol=1e-5,
                                   rtol=1e-5, err_msg=name)
    np.testing.assert_array_equal(joint_run.rankings, solo.rankings)
    np.testing.assert_allclose(joint_run.hidden, solo.hidden, atol=1e-5, rtol=1e-5)
    assert joint_run.hidden.shape == solo.hidden.shape and joint_run.hidden.dtype == solo.hidden.dtype
    np.testing.assert_array_equal(joint_run.activation_layers, solo.activation_layers)
    if solo.activations is None:
        assert joint_run.activations is None
    else:
        np.testing.assert_allclose(joint_run.activations, solo.activations, atol=1e-5, rtol=1e-5)
    assert sorted(joint_run.attributions) == sorted(solo.attributions)
    for method, attribution in solo.attributions.items():
        np.testing.assert_allclose(joint_run.attributions[method].values, attribution.values, atol=1e-5)
    assert joint_run.nbytes == solo.nbytes


def test_one_forward_gives_every_request_its_solo_run(causal) -> None:
    model, tokenizer, arch = causal
    texts = _texts(arch.vocab_size, 4)
    requests = [
        joint.JointRequest(texts[0]),
        joint.JointRequest(texts[1], AnalysisOptions(activation_layers=(-1, 0), topk=3)),
        joint.JointRequest(texts[2], AnalysisOptions(activations=False, topk=5)),
        joint.JointRequest(texts[3], AnalysisOptions(attribution=("grad_x_input",))),
    ]
    solo = [service.analyze(model, tokenizer, r.input_ids, r.options) for r in requests]
    calls, handle = _forward_counter(model)
    try:
        runs = joint.analyze_jointly(model, arch, tokenizer, requests)
    finally:
        handle.remove()
    # One stacked forward; the only others are grad_x_input's own passes for the request that asked.
    assert calls[0] == 1 and len(calls) == 1 + _attribution_forwards(model, tokenizer, texts[3])
    for run, expected in zip(runs, solo, strict=True):
        assert isinstance(run, AnalysisRun)
        assert_same_run(run, expected)
    # The stacked rows really differ: no row got another's numbers.
    assert not np.allclose(runs[0].hidden, runs[1].hidden)


def _attribution_forwards(model, tokenizer, ids) -> int:
    calls, handle = _forward_counter(model)
    try:
        service.analyze(model, tokenizer, ids, AnalysisOptions(attribution=("grad_x_input",), activations=False))
    finally:
        handle.remove()
    return len(calls) - 1  # minus the capture forward


def test_hooks_are_scoped_and_the_shared_model_is_untouched(causal) -> None:
    model, tokenizer, arch = causal
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    joint.analyze_jointly(model, arch, tokenizer, [joint.JointRequest(t) for t in _texts(arch.vocab_size, 3)])
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]), name
        assert not p.requires_grad or p.grad is None


def test_one_bad_request_fails_alone(causal) -> None:
    model, tokenizer, arch = causal
    texts = _texts(arch.vocab_size, 2, seed=1)
    calls = []

    def cancelled() -> None:
        calls.append(1)
        raise RuntimeError("cancelled by its user")

    outcomes = joint.analyze_jointly(model, arch, tokenizer, [
        joint.JointRequest(texts[0]),
        joint.JointRequest(texts[1], AnalysisOptions(activation_layers=(99,))),  # no such layer
        joint.JointRequest(texts[1][:1]),  # one token: nothing to score
        joint.JointRequest(texts[1], check_cancelled=cancelled),
        joint.JointRequest(texts[1]),
        joint.JointRequest(texts[1], AnalysisOptions(attention=True)),  # the stacked pass records no attention
    ])
    assert isinstance(outcomes[1], InvalidArgument) and "out of range" in str(outcomes[1])
    assert isinstance(outcomes[2], InvalidArgument) and "two tokens" in str(outcomes[2])
    assert isinstance(outcomes[3], RuntimeError) and calls
    assert isinstance(outcomes[5], InvalidArgument) and "attention" in str(outcomes[5])
    assert_same_run(outcomes[0], service.analyze(model, tokenizer, texts[0]))
    assert_same_run(outcomes[4], service.analyze(model, tokenizer, texts[1]))


def test_unequal_lengths_are_refused(causal) -> None:
    model, tokenizer, arch = causal
    a, b = _texts(arch.vocab_size, 2)
    with pytest.raises(InvalidArgument, match="one length"):
        joint.analyze_jointly(model, arch, tokenizer, [joint.JointRequest(a), joint.JointRequest(b[:-1])])


def test_many_rows_split_into_passes_of_bounded_size(causal, monkeypatch) -> None:
    model, tokenizer, arch = causal
    monkeypatch.setattr(joint, "MAX_JOINT_TOKENS", 2 * LENGTH)
    texts = _texts(arch.vocab_size, 5, seed=2)
    calls, handle = _forward_counter(model)
    try:
        runs = joint.analyze_jointly(model, arch, tokenizer, [joint.JointRequest(t) for t in texts])
    finally:
        handle.remove()
    assert len(calls) == 3  # 2 + 2 + 1 rows
    assert_same_run(runs[4], service.analyze(model, tokenizer, texts[4]))


def test_a_masked_model_cannot_share_a_causal_pass() -> None:
    model, tokenizer = load_tiny_model("bert", attn_implementation=None)
    arch = service.architecture_for(model)
    mask = tokenizer.mask_token_id
    with pytest.raises(InvalidArgument, match="causal"):
        joint.analyze_jointly(model, arch, tokenizer,
                              [joint.JointRequest([5, mask, 7]), joint.JointRequest([5, 6, mask])])
