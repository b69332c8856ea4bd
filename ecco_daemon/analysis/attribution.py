"""Primary attributions for all output tokens together: the methods, registered in ``methods.py``.

Why: Ecco ran captum once per generated token over the growing prefix. Here one teacher-forced forward
(with ``inputs_embeds`` requiring grad) gives every target's score, and batched backward passes give
every target's gradient. Integrated gradients runs its interpolation steps as one batch; occlusion runs
its occluded copies as batches. Values are normalized per output token to sum to 1 over the tokens that
may explain it, as Ecco does. The shared model is never mutated: no layer is swapped, no hook is left.

Methods (``methods.ATTRIBUTION_METHODS``; Ecco's names ``ig``, ``saliency``, ``input_x_gradient`` are aliases):
- gradient: L2 norm over the embedding of the score's gradient, per token;
- grad_x_input: L2 norm of gradient * embedding;
- integrated_gradients: zero baseline, Gauss-Legendre steps as captum (default 50), L2 norm;
- occlusion: the token's embedding replaced by zeros; raw = score(original) - score(occluded);
- contrastive: grad_x_input of log p(target) - log p(foil).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ecco_daemon.analysis.architecture import Architecture
from ecco_daemon.analysis.batched_grad import BatchedGrad, activation_bytes, chunk_size
from ecco_daemon.analysis.checkpoints import layer_checkpoints
from ecco_daemon.analysis.errors import InvalidArgument
from ecco_daemon.analysis.methods import ATTRIBUTION_METHODS, register_attribution_method
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.progress import CancelCheck, Checkpoint
from ecco_daemon.analysis.sequence import TokenSequence, embed_tokens, forward_rows, model_device
from ecco_daemon.models.family import CAUSAL

AUTOCAST = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Attribution:
    """Attribution of every output token to the tokens that may explain it."""

    method: str
    score: str  # the attributed quantity: logit, log_prob, prob or contrastive
    target_positions: np.ndarray  # (N,) index into the sequence's tokens
    target_ids: np.ndarray  # (N,)
    values: np.ndarray  # (N, S) float32, >= 0, each row sums to 1 over its source tokens (else 0)
    raw: np.ndarray  # (N, S) float32 before normalization (occlusion: signed score change)
    foils: np.ndarray | None = None  # (N,) the foil token id of each target (contrastive)
    convergence_delta: np.ndarray | None = None  # (N,) integrated gradients only
    used_vmap: bool = False  # whether the batched (vmap) backward ran
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        arrays = [
            self.target_positions,
            self.target_ids,
            self.values,
            self.raw,
            self.foils,
            self.convergence_delta,
        ]
        return int(sum(a.nbytes for a in arrays if a is not None))


def attribute(
    model: nn.Module,
    arch: Architecture,
    seq: TokenSequence,
    method: str,
    options: AnalysisOptions | None = None,
    check_cancelled: Checkpoint | CancelCheck | None = None,
) -> Attribution:
    """Attribute every output token of ``seq`` with ``method``, a canonical name from
    ``options.attribution`` (names were checked when the options were built); see the module docstring.

    ``check_cancelled``: a bare cancel check, or a ``Checkpoint`` whose total already counts this
    method's ``work_units`` (a run plans all its methods first); its done count grows as work ends."""
    spec = ATTRIBUTION_METHODS[method]
    options = options or AnalysisOptions()
    if seq.n_targets == 0:
        raise InvalidArgument("the sequence has no output tokens to attribute")
    checkpoint = Checkpoint.of(check_cancelled)
    units, unit = work_units(model, arch, seq, method, options)
    if checkpoint.total == 0:
        checkpoint.plan(units)
    foils = _foil_array(options.foils, seq.n_targets)
    if spec.needs_foil:
        score = "contrastive"
    else:
        score = options.score or ("contrastive" if foils is not None else spec.default_score)
    if score == "contrastive" and foils is None:
        raise InvalidArgument(f"{spec.name} needs foils: the token(s) to contrast each target against")
    with (
        torch.inference_mode(False),
        torch.enable_grad(),
        _autocast(model, options.autocast),
        _attention_kernel(options),
        # Checks inside each batch too: one can run for minutes.
        layer_checkpoints(arch, None if check_cancelled is None else checkpoint),
    ):
        checkpoint.begin(method=method, unit=unit, method_total=units)
        return spec.compute(model, arch, seq, options, score, foils, checkpoint)


def work_units(model: nn.Module, arch: Architecture, seq: TokenSequence, method: str,
               options: AnalysisOptions) -> tuple[int, str]:
    """How much work ``method`` will report, and in what unit: integrated gradients counts blocks x steps
    (each causal block of targets runs every step), occlusion the occluded tokens, the gradient methods
    the targets whose gradients are taken."""
    if method == "integrated_gradients":
        return len(_blocks(model, arch, seq, options)) * options.steps, "steps"
    if method == "occlusion":
        return seq.n_tokens, "tokens"
    return seq.n_targets, "targets"


def _attention_kernel(options: AnalysisOptions):
    """The math attention kernel under a reduced-precision backward: the CPU flash kernel's backward runs
    its many small matmuls through the bfloat16 conversion and becomes several times slower."""
    if options.backward_precision == "full":
        return contextlib.nullcontext()
    return sdpa_kernel(SDPBackend.MATH)


def _autocast(model: nn.Module, dtype_name: str | None):
    """A torch.autocast context for lower-precision passes, or a no-op; it never converts the weights."""
    if dtype_name is None:
        return contextlib.nullcontext()
    return torch.autocast(model_device(model).type, dtype=AUTOCAST[dtype_name])


# ------------------------------------------------------------------------------------------ internals


def _foil_array(given: Any, n_targets: int) -> np.ndarray | None:
    if given is None:
        return None
    foils = np.asarray(given, dtype=np.int64).reshape(-1)
    if foils.size == 1:
        foils = np.repeat(foils, n_targets)
    if foils.size != n_targets:
        raise InvalidArgument(
            f"foils must have one id or one per output token ({n_targets}), got {foils.size}"
        )
    return foils


def row_scores(
    selected: torch.Tensor, target_ids: np.ndarray, score: str, foils: np.ndarray | None
) -> torch.Tensor:
    """The attributed quantity from the logits rows of the targets: (B, C, V) -> (B, C) float32."""
    device = selected.device
    selected = selected.float()
    targets = torch.as_tensor(target_ids, device=device)
    index = torch.arange(len(target_ids), device=device)
    if score == "logit":
        return selected[:, index, targets]
    if score == "contrastive":
        assert foils is not None
        foil = torch.as_tensor(foils, device=device)
        return selected[:, index, targets] - selected[:, index, foil]
    log_probs = torch.log_softmax(selected, dim=-1)[:, index, targets]
    return log_probs if score == "log_prob" else log_probs.exp()


@dataclass(frozen=True)
class TargetBlock:
    """Targets ``start..stop-1`` and the tokens their forward pass needs: the first ``n_tokens``.

    Why: a causal model's prediction at row r depends on tokens 0..r only. Attributing a block of
    consecutive output tokens over just the prefix they need skips the backward work (zero gradients)
    that the rest of the sequence would cost: with blocks of 8 on SmolLM2 at 32 output tokens, about a
    third of the arithmetic for grad×input and half for integrated gradients, with identical results.
    """

    start: int
    stop: int
    n_tokens: int

    def scores(
        self, model: nn.Module, seq: TokenSequence, inputs: torch.Tensor, score: str, foils: np.ndarray | None
    ) -> torch.Tensor:
        """Scores of this block's targets from embedded inputs (B, n_tokens, H): -> (B, C)."""
        rows = torch.as_tensor(seq.target_rows[self.start : self.stop], device=inputs.device)
        logits = forward_rows(model, seq, inputs, rows)  # (B, C, V)
        block_foils = None if foils is None else foils[self.start : self.stop]
        return row_scores(logits, seq.target_ids[self.start : self.stop], score, block_foils)


# On a CPU the arithmetic is the cost: small blocks waste the least on later tokens. bfloat16 matmuls (a
# reduced backward) are cheap enough that larger blocks' fuller matrices win (SmolLM2, 32 tokens, 2 cores).
CPU_BLOCK_TARGETS = {"full": 8, "reduced": 16}


def target_blocks(seq: TokenSequence, size: int) -> list[TargetBlock]:
    """Causal targets in blocks of ``size`` over their prefixes; other families: one block, every token."""
    positions = seq.target_positions
    if seq.family != CAUSAL or np.any(np.diff(positions) < 0):
        return [TargetBlock(0, seq.n_targets, seq.n_tokens)]
    return [
        TargetBlock(start, min(seq.n_targets, start + size), int(positions[min(seq.n_targets, start + size) - 1]))
        for start in range(0, seq.n_targets, size)
    ]


def _block_size(options: AnalysisOptions, device: torch.device, per_target: int, n_targets: int) -> int:
    """Targets per block: small on a CPU (arithmetic-bound); on a GPU as many as memory allows (launch-bound)."""
    if options.block_size is not None:
        return max(1, options.block_size)
    if device.type == "cpu":
        return CPU_BLOCK_TARGETS[options.backward_precision]
    return chunk_size(n_targets, per_target, device, options.chunk_size)


def _blocks(model: nn.Module, arch: Architecture, seq: TokenSequence, options: AnalysisOptions) -> list[TargetBlock]:
    """The target blocks the gradient methods and integrated gradients run, sized for the model's device."""
    device = model_device(model)
    return target_blocks(seq, _block_size(options, device, activation_bytes(model, arch, seq.n_tokens), seq.n_targets))


def _normalize(raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1 over the allowed source tokens: raw (N, S) >= 0 -> (N, S)."""
    values = np.where(mask, raw, 0.0)
    totals = values.sum(axis=1, keepdims=True)
    return np.divide(values, totals, out=np.zeros_like(values), where=totals > 0).astype(np.float32)


def _result(
    method: str,
    seq: TokenSequence,
    score: str,
    raw: np.ndarray,
    foils: np.ndarray | None,
    positive: np.ndarray | None = None,
    **kwargs: Any,
) -> Attribution:
    mask = seq.source_mask()
    raw = np.where(mask, raw, 0.0).astype(np.float32)
    values = _normalize(np.abs(raw) if positive is None else positive, mask)
    return Attribution(
        method=method,
        score=score,
        target_positions=seq.target_positions.copy(),
        target_ids=seq.target_ids.copy(),
        values=values,
        raw=raw,
        foils=foils,
        **kwargs,
    )


def _gradient_norms(
    model: nn.Module,
    arch: Architecture,
    seq: TokenSequence,
    options: AnalysisOptions,
    score: str,
    foils: np.ndarray | None,
    checkpoint: Checkpoint,
    times_input: bool,
) -> tuple[np.ndarray, bool]:
    """L2 norm per token of grad (or grad * input) for every target: (N, S)."""
    device = model_device(model)
    embeds = embed_tokens(arch, seq, device)  # (S, H)
    backward = BatchedGrad(options.batched, options.backward_precision == "reduced")
    norms = torch.zeros(seq.n_targets, seq.n_tokens, device=device)
    for block in _blocks(model, arch, seq, options):
        checkpoint()
        inputs = embeds[: block.n_tokens].unsqueeze(0).clone().requires_grad_(True)  # (1, n, H)
        outputs = block.scores(model, seq, inputs, score, foils)  # (1, C)
        per_target = activation_bytes(model, arch, block.n_tokens)
        chunk = chunk_size(block.stop - block.start, per_target, device, options.chunk_size)
        for start, grads in backward.chunks(outputs, inputs, chunk):  # grads (c, 1, n, H)
            checkpoint()
            grads = grads[:, 0].float()
            if times_input:
                grads = grads * inputs[0].detach().float()
            first = block.start + start
            norms[first : first + grads.shape[0], : block.n_tokens] = grads.norm(dim=-1)
            checkpoint.advance(grads.shape[0])
    return norms.cpu().numpy(), backward.used_vmap


@register_attribution_method("gradient", description="L2 norm of the score's gradient per token")
def gradient(model, arch, seq, options, score, foils, checkpoint) -> Attribution:
    raw, vmap = _gradient_norms(model, arch, seq, options, score, foils, checkpoint, times_input=False)
    return _result("gradient", seq, score, raw, foils, used_vmap=vmap)


@register_attribution_method("grad_x_input", description="L2 norm of gradient * embedding per token")
def grad_x_input(model, arch, seq, options, score, foils, checkpoint) -> Attribution:
    raw, vmap = _gradient_norms(model, arch, seq, options, score, foils, checkpoint, times_input=True)
    return _result("grad_x_input", seq, score, raw, foils, used_vmap=vmap)


@register_attribution_method(
    "contrastive", needs_foil=True, description="grad_x_input of log p(target) - log p(foil)"
)
def contrastive(model, arch, seq, options, score, foils, checkpoint) -> Attribution:
    raw, vmap = _gradient_norms(model, arch, seq, options, "contrastive", foils, checkpoint, times_input=True)
    return _result("contrastive", seq, "contrastive", raw, foils, used_vmap=vmap)


def ig_steps(steps: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Interpolation points in [0, 1] and their weights (captum's rules; ``options.IG_METHODS``)."""
    if method == "gausslegendre":
        points, weights = np.polynomial.legendre.leggauss(steps)
        return 0.5 * (points + 1), 0.5 * weights
    # riemann_trapezoid: the one other rule AnalysisOptions accepts
    if steps < 2:
        raise InvalidArgument("riemann_trapezoid needs at least 2 steps")
    weights = np.full(steps, 1.0 / (steps - 1))
    weights[[0, -1]] /= 2
    return np.linspace(0, 1, steps), weights


@register_attribution_method(
    "integrated_gradients", description="integrated gradients from a zero baseline, L2 norm per token"
)
def integrated_gradients(model, arch, seq, options, score, foils, checkpoint) -> Attribution:
    device = model_device(model)
    embeds = embed_tokens(arch, seq, device)  # (S, H); the baseline is zero, so the path is alpha * embeds
    alphas, weights = ig_steps(options.steps, options.ig_method)
    raw = torch.zeros(seq.n_targets, seq.n_tokens, device=device)
    sums = torch.zeros(seq.n_targets, device=device)  # sum of each target's attributions (completeness)
    backward = BatchedGrad(options.batched, options.backward_precision == "reduced")
    for block in _blocks(model, arch, seq, options):
        prefix = embeds[: block.n_tokens]
        per_sequence = activation_bytes(model, arch, block.n_tokens)
        step_batch = chunk_size(len(alphas), 2 * per_sequence, device, options.step_batch)
        total = torch.zeros(block.stop - block.start, *prefix.shape, dtype=torch.float32, device=device)
        for first in range(0, len(alphas), step_batch):
            checkpoint()
            alpha = torch.as_tensor(alphas[first : first + step_batch], dtype=embeds.dtype, device=device)
            weight = torch.as_tensor(weights[first : first + step_batch], dtype=torch.float32, device=device)
            path = (alpha[:, None, None] * prefix).requires_grad_(True)  # (M, n, H)
            outputs = block.scores(model, seq, path, score, foils)  # (M, C)
            chunk = chunk_size(block.stop - block.start, len(alpha) * per_sequence, device, options.chunk_size)
            for start, grads in backward.chunks(outputs, path, chunk):  # grads (c, M, n, H)
                checkpoint()
                total[start : start + grads.shape[0]] += torch.einsum("m,cmsh->csh", weight, grads.float())
            del outputs, path
            checkpoint.advance(len(alpha))
        attributions = total * prefix.float()  # (C, n, H)
        raw[block.start : block.stop, : block.n_tokens] = attributions.norm(dim=-1)
        sums[block.start : block.stop] = attributions.sum(dim=(1, 2))
    with torch.no_grad():
        rows = torch.as_tensor(seq.target_rows, device=device)
        ends = row_scores(
            forward_rows(model, seq, torch.stack([torch.zeros_like(embeds), embeds]), rows),
            seq.target_ids,
            score,
            foils,
        )
    delta = sums - (ends[1] - ends[0])  # (N,)
    return _result(
        "integrated_gradients",
        seq,
        score,
        raw.cpu().numpy(),
        foils,
        convergence_delta=delta.cpu().numpy(),
        used_vmap=backward.used_vmap,
        extra={"steps": options.steps, "ig_method": options.ig_method},
    )


@register_attribution_method(
    "occlusion",
    default_score="log_prob",
    description="change of the target's log-probability when a token's embedding is zeroed",
)
def occlusion(model, arch, seq, options, score, foils, checkpoint) -> Attribution:
    device = model_device(model)
    embeds = embed_tokens(arch, seq, device)  # (S, H)
    per_sequence = activation_bytes(model, arch, seq.n_tokens) // 4  # no backward: forward only
    batch = chunk_size(seq.n_tokens, per_sequence, device, options.step_batch)
    raw = torch.zeros(seq.n_targets, seq.n_tokens, device=device)
    rows = torch.as_tensor(seq.target_rows, device=device)

    def scores(inputs: torch.Tensor) -> torch.Tensor:  # (M, S, H) -> (M, N)
        return row_scores(forward_rows(model, seq, inputs, rows), seq.target_ids, score, foils)

    with torch.no_grad():
        original = scores(embeds.unsqueeze(0))[0]
        for first in range(0, seq.n_tokens, batch):
            checkpoint()
            positions = torch.arange(first, min(seq.n_tokens, first + batch), device=device)
            copies = embeds.unsqueeze(0).repeat(len(positions), 1, 1)  # (M, S, H)
            copies[torch.arange(len(positions), device=device), positions] = 0
            occluded = scores(copies)  # (M, N)
            raw[:, positions] = (original[None, :] - occluded).T
            checkpoint.advance(len(positions))
    return _result("occlusion", seq, score, raw.cpu().numpy(), foils)
