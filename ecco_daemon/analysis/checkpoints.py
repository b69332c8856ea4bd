"""Cancel checks inside the model's own passes: as each transformer layer runs, forward and backward.

Why: an attribution's loops check the cancel flag between their batches, but one batch (64 integrated-
gradients steps over a long prompt, or 64 occluded copies) can run for minutes on a CPU, and a job past
its time limit or cancelled ran on that long. A hook on every layer and each of its parts checks the flag
when the part's forward ends, and a hook on the part's output checks it again when the backward reaches it.
Scoped as ``architecture.capture_io``: forwards run by other threads are ignored, the backward hooks
belong to this call's own tensors, and every hook is removed in ``finally``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ecco_daemon.analysis.architecture import Architecture
from ecco_daemon.analysis.progress import CancelCheck


@contextmanager
def layer_checkpoints(arch: Architecture, check: CancelCheck | None) -> Iterator[None]:
    """While inside, every layer of ``arch`` calls ``check`` (which raises to cancel) in both passes."""
    if check is None:
        yield
        return
    owner = threading.get_ident()

    def backward_check(grad: torch.Tensor) -> None:
        check()

    def hook(_module: nn.Module, _args: Any, output: Any) -> None:
        if threading.get_ident() != owner:
            return
        check()
        hidden = output[0] if isinstance(output, tuple | list) else output
        if isinstance(hidden, torch.Tensor) and hidden.requires_grad:
            hidden.register_hook(backward_check)

    layers: list[nn.Module] = [*arch.decoder.layers, *(arch.encoder.layers if arch.encoder else [])]
    handles = []
    try:
        for layer in layers:  # the layer and its parts (attention, MLP, norms): a check every few matmuls
            handles += [module.register_forward_hook(hook) for module in layer.modules()]
        yield
    finally:
        for handle in handles:
            handle.remove()
