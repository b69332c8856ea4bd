"""Stored states as Ecco exposes them agree with Hugging Face's own ``output_hidden_states``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecco_daemon.analysis import service
from ecco_daemon.analysis.architecture import inspect_architecture
from ecco_daemon.analysis.errors import InvalidArgument, UnknownName
from ecco_daemon.analysis.joint import capture_joint
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.run import run_analysis
from tests.analysis_inputs import text_sequence
from tests.tiny_models import load_tiny_model

TEXT = "The cat sat on the mat."


@pytest.mark.parametrize("family", ["gpt2", "llama", "bert"])
def test_embedding_and_layer_states_are_hugging_faces_hidden_states(family: str) -> None:
    model, tokenizer = load_tiny_model(family)
    arch = inspect_architecture(model)
    text = "The [MASK] sat on the mat." if family == "bert" else TEXT
    run = run_analysis(model, arch, tokenizer, text_sequence(arch, tokenizer, text), AnalysisOptions())
    with torch.no_grad():
        reference = model(torch.as_tensor(run.seq.token_ids)[None], output_hidden_states=True).hidden_states
    embedding = service.view_states(run, tokenizer, what="embedding")["values"]  # (1, S, H)
    np.testing.assert_allclose(embedding[0], reference[0][0].numpy(), atol=1e-5)
    hidden = service.view_states(run, tokenizer, what="hidden")
    assert hidden["layers"].tolist() == list(range(arch.n_layers))
    # Every layer's own output; Hugging Face's last entry has the final norm applied, ours does not.
    for layer in range(arch.n_layers - 1):
        np.testing.assert_allclose(hidden["values"][layer], reference[layer + 1][0].numpy(), atol=1e-5)
    last = service.view_states(run, tokenizer, what="hidden", layers=[-1])
    assert last["layers"].tolist() == [arch.n_layers - 1]
    np.testing.assert_array_equal(last["values"][0], hidden["values"][-1])


def test_activations_by_layer_and_clear_refusals() -> None:
    model, tokenizer = load_tiny_model("llama")
    arch = inspect_architecture(model)
    seq = text_sequence(arch, tokenizer, TEXT)
    run = run_analysis(model, arch, tokenizer, seq, AnalysisOptions(activation_layers=(1,)))
    acts = service.view_states(run, tokenizer, what="activations", layers=[1])
    np.testing.assert_array_equal(acts["values"], run.activations)
    with pytest.raises(InvalidArgument, match="layer 0 not recorded"):
        run.states("activations", [0])
    with pytest.raises(UnknownName, match="hidden"):
        run.states("weights")


def test_a_joint_pass_records_each_rows_embedding() -> None:
    model, tokenizer = load_tiny_model("llama")
    arch = inspect_architecture(model)
    seqs = [text_sequence(arch, tokenizer, t) for t in ("the cat sat", "the mat sat")]
    assert seqs[0].n_tokens == seqs[1].n_tokens
    joint = capture_joint(model, arch, seqs, [[], []])
    for seq, captured in zip(seqs, joint, strict=True):
        solo = run_analysis(model, arch, tokenizer, seq, AnalysisOptions(activations=False))
        np.testing.assert_allclose(captured.embedding, solo.embedding, atol=1e-5)
