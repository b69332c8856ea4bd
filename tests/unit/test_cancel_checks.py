"""A cancel (or a time limit) is seen inside every long loop: within an attribution's batches, forward and
backward, and between NMF iterations, not only between batches.

The check is counted, or made to raise at its n-th call: before these checks existed, a whole batch of
integrated-gradients steps (minutes of work on a CPU for a long prompt) ran between two calls.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecco_daemon.analysis.architecture import inspect_architecture
from ecco_daemon.analysis.attribution import attribute
from ecco_daemon.analysis.nmf import run_nmf
from ecco_daemon.analysis.options import AnalysisOptions
from tests.analysis_inputs import text_sequence
from tests.tiny_models import load_tiny_model

TEXT = "The capital of France is Paris. The cat sat on the mat."
# One block of every target, one batch of every step: the loops themselves check only at its edges.
ONE_BATCH = AnalysisOptions(attribution=("integrated_gradients",), steps=8, step_batch=1000, block_size=1000,
                            chunk_size=1000)


class Stop(Exception):
    pass


class Check:
    """Counts its calls; raises Stop at call ``stop_at`` (never, when None)."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.calls = 0
        self.stop_at = stop_at

    def __call__(self) -> None:
        self.calls += 1
        if self.calls == self.stop_at:
            raise Stop()


@pytest.fixture(scope="module")
def llama():
    model, tokenizer = load_tiny_model("llama")
    arch = inspect_architecture(model)
    return model, arch, text_sequence(arch, tokenizer, TEXT)


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion", "grad_x_input"])
def test_attributions_check_inside_each_pass(llama, method):
    model, arch, seq = llama
    check = Check()
    attribute(model, arch, seq, method, ONE_BATCH, check)
    # At least once per layer in the one forward (and, with gradients, again in the backward).
    assert check.calls >= arch.n_layers * (1 if method == "occlusion" else 2) + 1


def test_a_cancel_inside_a_batch_stops_it_and_leaves_the_model_as_it_was(llama):
    model, arch, seq = llama
    reference = attribute(model, arch, seq, "integrated_gradients", ONE_BATCH)
    for stop_at in (2, 4, 6):  # in the forward, and in the backward
        with pytest.raises(Stop):
            attribute(model, arch, seq, "integrated_gradients", ONE_BATCH, Check(stop_at))
    assert not any(m._forward_hooks for m in model.modules())  # every hook removed
    again = attribute(model, arch, seq, "integrated_gradients", ONE_BATCH, Check())
    np.testing.assert_array_equal(again.raw, reference.raw)


def test_nmf_checks_between_iterations():
    activations = np.random.default_rng(0).random((2, 30, 16), dtype=np.float32)  # (La, S, I)
    check = Check()
    result = run_nmf(activations, np.arange(2), n_components=3, max_iter=40, check_cancelled=check)
    assert check.calls >= 2 and result.factors.shape == (3, 30)
    with pytest.raises(Stop):
        run_nmf(activations, np.arange(2), n_components=3, max_iter=40, check_cancelled=Check(2))
