"""The unembedding projection: the same bits for a row whatever batch it is in, and nn.Linear's values."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ecco_daemon.analysis.projection import project


@pytest.fixture
def unembedding() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(64, 5000, bias=False)


@torch.no_grad()
def test_a_row_gets_the_same_bits_alone_and_in_any_batch(unembedding) -> None:
    states = torch.randn(3, 7, 64)
    together = project(unembedding, states)
    assert together.shape == (3, 7, 5000)
    for layer, row in [(0, 0), (2, 6), (1, 3)]:
        alone = project(unembedding, states[layer, row])
        assert alone.shape == (5000,)
        assert torch.equal(alone, together[layer, row])
        assert torch.equal(project(unembedding, states[:, row]), together[:, row])


@torch.no_grad()
def test_values_are_nn_linears_to_fp32_rounding(unembedding) -> None:
    states = torch.randn(4, 64)
    torch.testing.assert_close(project(unembedding, states), unembedding(states), atol=1e-4, rtol=1e-5)
    with_bias = nn.Linear(64, 300)
    torch.testing.assert_close(project(with_bias, states), with_bias(states), atol=1e-4, rtol=1e-5)


@torch.no_grad()
def test_other_heads_and_dtypes_go_through_the_module(unembedding) -> None:
    states = torch.randn(2, 64)
    half = nn.Linear(64, 300, bias=False).to(torch.bfloat16)
    assert project(half, states.bfloat16()).dtype == torch.bfloat16
    head = nn.Sequential(nn.Linear(64, 300))
    torch.testing.assert_close(project(head, states), head(states))
