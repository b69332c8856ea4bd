"""Batched backward passes and memory-based chunk sizes for attribution.

Why: per-token attribution as Ecco and inseq do it re-runs the prefix for every output token. Here one
forward produces every target's score and ``torch.autograd.grad(..., is_grads_batched=True)`` computes
the gradients of a chunk of targets at once, falling back to a loop over targets (same forward, retained
graph) when vmap cannot batch an operator. Chunks are sized from the memory actually free.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
from torch import nn

from ecco_daemon.analysis.architecture import Architecture

log = logging.getLogger(__name__)

MAX_CHUNK = 64


def free_memory_bytes(device: torch.device) -> int:
    """Memory a chunk may use: half of the free GPU memory, or a quarter of available host memory."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    try:
        import psutil

        return int(psutil.virtual_memory().available * 0.25)
    except Exception:  # psutil missing or unreadable: assume a modest 2 GiB
        return 2 << 30


def activation_bytes(model: nn.Module, arch: Architecture, n_tokens: int) -> int:
    """A rough upper estimate of the activations one sequence keeps alive through forward and backward."""
    config = getattr(model, "config", None)
    heads = int(getattr(config, "num_attention_heads", 0) or getattr(config, "num_heads", 0) or 8)
    element = next(model.parameters()).element_size()
    layers = arch.n_layers + (len(arch.encoder.layers) if arch.encoder else 0)
    per_layer = 16 * arch.hidden_size + 4 * arch.decoder.intermediate_size + 2 * heads * n_tokens
    return max(1, element * n_tokens * (layers * per_layer + 2 * arch.vocab_size))


def chunk_size(items: int, bytes_per_item: int, device: torch.device, requested: int | None = None) -> int:
    """How many items (targets, IG steps, occluded variants) to process at once."""
    if requested is not None:
        return max(1, min(int(requested), items))
    fit = free_memory_bytes(device) // max(1, bytes_per_item)
    return int(max(1, min(items, fit, MAX_CHUNK)))


def _one_hot_outputs(outputs: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """grad_outputs selecting targets start..stop-1 in every batch row: (C, B, N)."""
    count = stop - start
    eye = torch.zeros(count, *outputs.shape, dtype=outputs.dtype, device=outputs.device)
    index = torch.arange(count, device=outputs.device)
    eye[index, :, start + index] = 1
    return eye


@contextlib.contextmanager
def reduced_precision_matmuls(device: torch.device) -> Iterator[None]:
    """float32 matmuls with bfloat16 inputs and float32 accumulation (oneDNN on AMX/avx512_bf16 CPUs), or TF32
    on CUDA; the flag is process-wide, which is safe because one worker thread runs a device's model work."""
    if device.type not in ("cpu", "cuda"):
        yield
        return
    backend = torch.backends.mkldnn.matmul if device.type == "cpu" else torch.backends.cuda.matmul
    previous = backend.fp32_precision
    backend.fp32_precision = "bf16" if device.type == "cpu" else "tf32"
    try:
        yield
    finally:
        backend.fp32_precision = previous


class BatchedGrad:
    """Gradients of each target score with respect to the embeddings, a chunk of targets at a time.

    ``batched`` tries vmap (``is_grads_batched``) and remembers a failure for the rest of the call, so the
    fallback costs one failed attempt at most. ``reduced_precision`` runs the backward's matmuls through
    ``reduced_precision_matmuls``; the forward (the scores themselves) stays in full precision.
    """

    def __init__(self, batched: bool = True, reduced_precision: bool = False) -> None:
        self.batched = batched
        self.reduced_precision = reduced_precision
        self.used_vmap = False

    def chunks(
        self, outputs: torch.Tensor, inputs: torch.Tensor, chunk: int
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """outputs (B, N) built from inputs (B, S, H); yields (start, grads (C, B, S, H)) chunk by chunk."""
        n_targets = outputs.shape[-1]
        for start in range(0, n_targets, chunk):
            stop = min(n_targets, start + chunk)
            last = stop == n_targets
            precision = reduced_precision_matmuls(inputs.device) if self.reduced_precision else contextlib.nullcontext()
            with precision:
                grads = self._grads(outputs, inputs, start, stop, retain=not last)
            yield start, grads

    def _grads(
        self, outputs: torch.Tensor, inputs: torch.Tensor, start: int, stop: int, retain: bool
    ) -> torch.Tensor:
        selector = _one_hot_outputs(outputs, start, stop)  # (C, B, N)
        if self.batched and stop - start > 1:
            try:
                (grads,) = torch.autograd.grad(
                    outputs, inputs, grad_outputs=selector, is_grads_batched=True, retain_graph=True
                )
                self.used_vmap = True
                return grads
            except (RuntimeError, NotImplementedError) as error:
                log.info("batched backward unavailable (%s); falling back to a loop over targets", error)
                self.batched = False
        rows = []
        for k in range(stop - start):
            keep = retain or k < stop - start - 1
            (grad,) = torch.autograd.grad(outputs, inputs, grad_outputs=selector[k], retain_graph=keep)
            rows.append(grad)
        return torch.stack(rows)  # (C, B, S, H)
