"""Rows of states through the unembedding: the one matrix product every logit-lens view pays for.

Why: a rankings_watch at a new position projects every layer's state through the whole vocabulary. On a
CPU, oneDNN's fp32 kernel does that about twice as fast as the BLAS behind ``nn.Linear`` (SmolLM2, 30
layers x 49,152 tokens: 13 ms against 28 ms on two cores; see benchmarks/view_latency.py), with the same
fp32 arithmetic. And ranks must not depend on how rows were batched: the rankings view (many rows at
once) and rankings_watch (one position) must agree to the last token. Both kernels give a row the same
bits in any batch of two rows or more, but a single row takes a matrix-vector kernel that sums in
another order, so a lone row is projected as a pair.
"""

from __future__ import annotations

import torch
from torch import nn


def _one_dnn_usable(linear: nn.Module, rows: torch.Tensor) -> bool:
    weight = getattr(linear, "weight", None)
    return (
        type(linear) is nn.Linear
        and isinstance(weight, torch.Tensor)
        and weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and rows.dtype == torch.float32
        and not torch.is_grad_enabled()
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


def project(linear: nn.Module, states: torch.Tensor) -> torch.Tensor:
    """``linear(states)`` for states (..., H) -> (..., V), batch-invariant and, on a CPU, through oneDNN."""
    rows = states.reshape(-1, states.shape[-1])
    single = rows.shape[0] == 1
    if single:
        rows = rows.expand(2, -1)
    rows = rows.contiguous()
    if _one_dnn_usable(linear, rows):
        out = torch.ops.mkldnn._linear_pointwise(rows, linear.weight, linear.bias, "none", [], "")
    else:
        out = linear(rows)
    if single:
        out = out[:1]
    return out.reshape(*states.shape[:-1], out.shape[-1])
