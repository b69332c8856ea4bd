"""The run object answers later views from what it stored, and concurrent runs on one model stay apart."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ecco_daemon.analysis.architecture import inspect_architecture
from ecco_daemon.analysis.errors import InvalidArgument, UnknownName
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.run import as_wire_array, run_analysis
from ecco_daemon.analysis.sequence import causal_sequence
from tests.analysis_inputs import text_sequence
from tests.tiny_models import load_tiny_model


@pytest.fixture(scope="module")
def llama():
    model, tokenizer = load_tiny_model("llama")
    return model, tokenizer, inspect_architecture(model)


def test_views_come_from_the_stored_run_without_a_model_forward(llama) -> None:
    model, tokenizer, arch = llama
    seq = text_sequence(arch, tokenizer, "The quick brown fox jumps over the lazy dog.")
    run = run_analysis(model, arch, tokenizer, seq, AnalysisOptions(attribution=("ig", "grad_x_input")))
    calls = []
    handle = model.register_forward_hook(lambda *args: calls.append(1))
    try:
        run.layer_predictions(3, topk=4)
        run.rankings_watch([5, 6, 7], 4)
        run.nmf(2)
        run.nmf(4, from_layer=1)
        run.states("hidden", [0, 1])
        run.states("activations", [0, 1])
        run.attribution("integrated_gradients")
    finally:
        handle.remove()
    assert calls == []
    assert run.attribution("ig") is run.attributions["integrated_gradients"]
    with pytest.raises(UnknownName, match="grad_x_input, integrated_gradients"):
        run.attribution("occlusion")
    with pytest.raises(InvalidArgument, match="not recorded"):
        run.states("hidden", [0, 7])


def test_nbytes_and_wire_arrays(llama) -> None:
    model, tokenizer, arch = llama
    seq = text_sequence(arch, tokenizer, "The cat sat on the mat.")
    run = run_analysis(model, arch, tokenizer, seq, AnalysisOptions(attribution=("gradient",)))
    n_tokens, n_targets = seq.n_tokens, seq.n_targets
    floor = run.hidden.nbytes + run.activations.nbytes + run.attributions["gradient"].values.nbytes
    assert run.hidden.shape == (arch.n_layers, n_tokens, arch.hidden_size)
    assert floor < run.nbytes < floor + 20_000
    full = run.summary()
    half = run.summary(float16=True)
    assert full["tokens"] == run.tokens and len(run.tokens) == n_tokens
    assert full["attributions"]["gradient"]["values"].dtype == np.float32
    assert half["attributions"]["gradient"]["values"].shape == (n_targets, n_tokens)
    assert half["scores"]["topk_probs"].dtype == np.float16
    np.testing.assert_allclose(half["scores"]["topk_probs"], full["scores"]["topk_probs"], rtol=1e-3)
    assert as_wire_array(run.hidden, float16=True).dtype == np.float16
    assert as_wire_array(run.rankings, float16=True).dtype == np.int32
    assert as_wire_array(run.hidden[:, ::2]).flags.c_contiguous


def test_generated_continuation_only_scores_the_new_tokens(llama) -> None:
    model, tokenizer, arch = llama
    prompt = tokenizer("The capital of France is").input_ids
    generated = tokenizer("Paris.", add_special_tokens=False).input_ids
    seq = causal_sequence(prompt + generated, first_target=len(prompt))
    run = run_analysis(model, arch, tokenizer, seq, AnalysisOptions(attribution=("grad_x_input",)))
    assert run.seq.target_ids.tolist() == generated
    assert run.attributions["grad_x_input"].values.shape == (len(generated), len(prompt) + len(generated))
    with pytest.raises(InvalidArgument, match="first_target"):
        causal_sequence(prompt, first_target=0)


def test_concurrent_runs_on_one_model_keep_their_own_state(llama) -> None:
    model, tokenizer, arch = llama
    texts = ["The cat sat on the mat.", "Numbers like 1, 2, 3 and 42 appear in text too."]
    options = AnalysisOptions(attribution=("grad_x_input",), steps=4)
    serial = [run_analysis(model, arch, tokenizer, text_sequence(arch, tokenizer, t), options) for t in texts]
    results: dict[int, object] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for _ in range(3):
                seq = text_sequence(arch, tokenizer, texts[index])
                results[index] = run_analysis(model, arch, tokenizer, seq, options)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    for index, expected in enumerate(serial):
        got = results[index]
        np.testing.assert_allclose(got.hidden, expected.hidden, atol=1e-5)
        np.testing.assert_allclose(got.activations, expected.activations, atol=1e-5)
        np.testing.assert_allclose(
            got.attributions["grad_x_input"].values, expected.attributions["grad_x_input"].values, atol=1e-5
        )
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_encoder_decoder_needs_an_output(llama) -> None:
    model, tokenizer = load_tiny_model("t5")
    arch = inspect_architecture(model)
    with pytest.raises(InvalidArgument, match="needs the output tokens"):
        text_sequence(arch, tokenizer, "The cat sat.")
    seq = text_sequence(arch, tokenizer, "The cat sat.", target="On the mat.")
    assert seq.token_ids[seq.n_encoder] == model.config.decoder_start_token_id
    run = run_analysis(model, arch, tokenizer, seq, AnalysisOptions(attribution=("grad_x_input",)))
    values = run.attributions["grad_x_input"].values
    assert values[:, : seq.n_encoder].sum() > 0  # encoder tokens explain decoder tokens
    assert values[1:, seq.n_encoder :].sum() > 0  # and so do earlier decoder tokens
    assert run.hidden.shape[1] == seq.n_rows
