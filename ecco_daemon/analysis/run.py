"""An analysis run: everything one teacher-forced pass produced, and the views computed from it.

Why: the daemon keeps a run in the per-user result store; layer predictions at another position,
rankings_watch with other tokens, NMF with another factor count and the stored states (which clients
compare with CCA and friends) are answered from it without running the model again (projecting a stored
state through the final norm and unembedding is not a model run). ``nbytes`` feeds the store's memory
cap; ``arrays`` gives the arrays for the wire, large float ones in float16 when asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ecco_daemon.analysis import logit_lens
from ecco_daemon.analysis.architecture import Architecture
from ecco_daemon.analysis.attribution import Attribution, attribute, work_units
from ecco_daemon.analysis.capture import Captured, capture_forward
from ecco_daemon.analysis.errors import InvalidArgument, NotCaptured, UnknownName
from ecco_daemon.analysis.methods import get_attribution_method
from ecco_daemon.analysis.nmf import NMFResult, run_nmf
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.progress import CancelCheck, Checkpoint, ProgressSink
from ecco_daemon.analysis.scores import TokenScores, score_tokens
from ecco_daemon.analysis.sequence import TokenSequence
from ecco_daemon.models.family import MASKED
from ecco_daemon.models.tokens import token_texts

PREDICTED = -1  # a masked target id meaning "the model's own top prediction"


@dataclass
class AnalysisRun:
    """What one run produced. ``arch`` references the shared model (read-only) for lens projections."""

    arch: Architecture = field(repr=False, compare=False)
    seq: TokenSequence
    tokens: list[str]  # (S,) decoded text of every token
    scores: TokenScores
    rankings: np.ndarray | None  # (L, N) int32: rank of each output token at every layer; None: not yet
    hidden: np.ndarray  # (L, R, H) float32: every layer's residual state (decoder rows for T5)
    activations: np.ndarray | None  # (La, S, I) float32 MLP activations at every position
    activation_layers: np.ndarray  # (La,)
    attention: dict[str, np.ndarray] | None  # "self": (L, heads, R, R); T5 adds "cross", "encoder"
    attributions: dict[str, Attribution] = field(default_factory=dict)
    embedding: np.ndarray | None = None  # (R, H) float32: the first layer's input (Ecco's embedding_states)
    lens: logit_lens.LensTable | None = None  # every row's top predictions per layer, projected once

    def __getstate__(self) -> dict[str, Any]:
        """Kept on disk without ``arch``: it references the shared model, which is not the run's to save.
        Whoever loads a run re-attaches the loaded model's architecture (``service.attach``)."""
        state = dict(self.__dict__)
        state["arch"] = None
        return state

    # ----------------------------------------------------------------------------------------- views

    def layer_predictions(
        self, position: int, topk: int = 10, layer: int | None = None
    ) -> logit_lens.LayerPredictions:
        """Each layer's top-k for the token at ``position`` (position == n_tokens: the next token)."""
        row = self.seq.prediction_row(position)
        layers = None
        if layer is not None:
            n = self.hidden.shape[0]
            if not -n <= layer < n:
                raise InvalidArgument(f"layer {layer} out of range; the model has layers 0..{n - 1}")
            layers = [layer % n]
        actual = self.actual_at(position)
        if topk <= logit_lens.TABLE_K:
            self.layer_rankings()  # projects every row once, with the rankings when they were skipped
        target = self._target_index(position, actual)
        if self.lens is not None and topk <= self.lens.k and (actual is None or target is not None):
            assert self.rankings is not None
            known = None if actual is None or target is None else (target, actual)
            return self.lens.predictions(row, position, topk, layers, known, self.rankings)
        return logit_lens.layer_predictions(self.arch, self.hidden, row, position, topk, layers, actual)

    def _target_index(self, position: int, actual: int | None) -> int | None:
        """Which output token ``actual`` at ``position`` is (its rank and probability are in the lens pass)."""
        found = np.flatnonzero(self.seq.target_positions == position)
        return int(found[0]) if len(found) and actual == int(self.seq.target_ids[found[0]]) else None

    def actual_at(self, position: int) -> int | None:
        """The token at ``position``: a masked target's resolved id, else the sequence's own; None past the end."""
        targets = np.flatnonzero(self.seq.target_positions == position)
        if len(targets):
            return int(self.seq.target_ids[targets[0]])
        return int(self.seq.token_ids[position]) if 0 <= position < self.seq.n_tokens else None

    def layer_rankings(self) -> np.ndarray:
        """(L, N) int32 rankings, computed from the kept layer states on first use when the run skipped them
        (with the lens table: one projection of every row serves both)."""
        if self.rankings is None or self.lens is None:
            self.lens, ranks = logit_lens.lens_pass(self.arch, self.hidden, self.seq.target_rows, self.seq.target_ids)
            if self.rankings is None:
                self.rankings = ranks
        return self.rankings

    def rankings_watch(self, watch: Sequence[int], position: int) -> np.ndarray:
        """(L, W) int32: rank of each watched token id at ``position`` in every layer."""
        ids = np.asarray(list(watch), dtype=np.int64)
        vocab = self.arch.vocab_size
        if ids.size == 0 or ids.min() < 0 or (vocab and ids.max() >= vocab):
            raise InvalidArgument(f"watch needs token ids in 0..{vocab - 1}")
        return logit_lens.rankings_watch(self.arch, self.hidden, self.seq.prediction_row(position), ids)

    def nmf(
        self, n_components: int = 10, from_layer: int | None = None, to_layer: int | None = None,
        check_cancelled: CancelCheck | None = None,
    ) -> NMFResult:
        if self.activations is None:
            raise NotCaptured("this run recorded no neuron activations (run it with activations=True)")
        return run_nmf(self.activations, self.activation_layers, n_components, from_layer, to_layer,
                       check_cancelled=check_cancelled)

    def attribution(self, method: str) -> Attribution:
        name = get_attribution_method(method).name
        if name not in self.attributions:
            raise UnknownName("attribution method of this run", method, self.attributions)
        return self.attributions[name]

    def attention_weights(self, layer: int, head: int | None = None, kind: str = "self") -> np.ndarray:
        """(Q, K) weights of one head, or (heads, Q, K) of every head of ``layer``."""
        if self.attention is None:
            raise NotCaptured("this run recorded no attention (run it with attention=True, eager attention)")
        if kind not in self.attention:
            raise UnknownName("attention kind", kind, self.attention)
        weights = self.attention[kind]  # (L, heads, Q, K)
        if not -weights.shape[0] <= layer < weights.shape[0]:
            raise InvalidArgument(f"layer {layer} out of range 0..{weights.shape[0] - 1}")
        if head is None:
            return weights[layer]
        if not -weights.shape[1] <= head < weights.shape[1]:
            raise InvalidArgument(f"head {head} out of range 0..{weights.shape[1] - 1}")
        return weights[layer, head]

    def states(self, what: str, layers: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A stored array as Ecco exposes it, and the layers it covers: "hidden" (La, R, H) every layer's
        output (before the final norm), "embedding" (1, R, H) the first layer's input, "activations"
        (La, S, I) the MLP activations. ``layers`` picks some (hidden, activations); None: all recorded."""
        if what == "embedding":
            if self.embedding is None:
                raise NotCaptured("this run recorded no embedding states")
            return self.embedding[None], np.zeros(0, dtype=np.int64)
        if what == "hidden":
            stack, recorded = self.hidden, np.arange(self.hidden.shape[0])
        elif what == "activations":
            if self.activations is None:
                raise NotCaptured("this run recorded no neuron activations (run it with activations=True)")
            stack, recorded = self.activations, self.activation_layers
        else:
            raise UnknownName("stored state", what, ["hidden", "embedding", "activations"])
        if layers is None:
            return stack, recorded
        rows = []
        for layer in layers:
            hits = np.flatnonzero(recorded == (layer + len(self.hidden) if layer < 0 else layer))
            if len(hits) == 0:
                raise InvalidArgument(f"layer {layer} not recorded; recorded: {recorded.tolist()}")
            rows.append(int(hits[0]))
        return stack[rows], recorded[rows]

    # --------------------------------------------------------------------------------- store & wire

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays this run keeps (the model it references is not counted)."""
        # Rankings and the lens table are counted whether computed yet or not.
        rankings = 4 * self.hidden.shape[0] * self.seq.n_targets + logit_lens.table_bytes(*self.hidden.shape[:2])
        total = self.scores.nbytes + rankings + self.hidden.nbytes + self.seq.token_ids.nbytes
        if self.activations is not None:
            total += self.activations.nbytes
        if self.attention is not None:
            total += sum(a.nbytes for a in self.attention.values())
        total += sum(a.nbytes for a in self.attributions.values())
        if self.embedding is not None:
            total += self.embedding.nbytes
        return int(total)

    def summary(self, float16: bool = False) -> dict[str, Any]:
        """What a first reply carries: tokens, scores, rankings, attributions (not states/activations)."""
        cast = _wire_cast(float16)
        return {
            "family": self.seq.family,
            "tokens": list(self.tokens),
            "token_ids": self.seq.token_ids,
            "n_encoder": self.seq.n_encoder,
            "n_layers": int(self.hidden.shape[0]),
            "target_positions": self.seq.target_positions,
            "scores": {name: cast(getattr(self.scores, name)) for name in self.scores.__dataclass_fields__},
            "rankings": self.rankings,
            "attributions": {
                name: {
                    "method": a.method,
                    "score": a.score,
                    "values": cast(a.values),
                    "raw": cast(a.raw),
                    "convergence_delta": a.convergence_delta,
                    "foils": a.foils,
                }
                for name, a in self.attributions.items()
            },
        }


def _wire_cast(float16: bool):
    def cast(array: np.ndarray) -> np.ndarray:
        if float16 and array.dtype == np.float32 and array.size >= 64:
            return array.astype(np.float16)
        return array

    return cast


def as_wire_array(array: np.ndarray, float16: bool = False) -> np.ndarray:
    """A contiguous array for the binary wire format, float32 ones halved on request."""
    return np.ascontiguousarray(_wire_cast(float16)(array))


# --------------------------------------------------------------------------------------- building runs


def _resolve_predicted(seq: TokenSequence, logits: torch.Tensor) -> TokenSequence:
    """Replace masked targets marked PREDICTED (or still the mask token) by the model's top choice."""
    if seq.family != MASKED:
        return seq
    targets = seq.target_ids.copy()
    unknown = (targets == PREDICTED) | (targets == seq.token_ids[seq.target_positions])
    if not unknown.any():
        return seq
    best = logits[torch.as_tensor(seq.target_positions, device=logits.device)].argmax(-1).cpu().numpy()
    targets[unknown] = best[unknown]
    return TokenSequence(seq.family, seq.token_ids, seq.n_encoder, seq.target_positions, targets)


def run_analysis(
    model: nn.Module,
    arch: Architecture,
    tokenizer: Any,
    seq: TokenSequence,
    options: AnalysisOptions | None = None,
    check_cancelled: CancelCheck | None = None,
    recorder: tuple[nn.Module, Architecture] | None = None,
    on_progress: ProgressSink | None = None,
) -> AnalysisRun:
    """One captured forward, then scores, rankings and the requested attributions.

    ``recorder``: the model (and its architecture) the recording forward runs on, when it is not
    ``model`` itself: the eager twin that returns attention weights (``service.recorder_for``).
    """
    options = options or AnalysisOptions()
    forward_model, forward_arch = recorder or (model, arch)
    captured = capture_forward(
        forward_model,
        forward_arch,
        seq,
        activation_layers=options.activation_layers,
        activations=options.activations,
        attention=options.attention,
    )
    seq = _resolve_predicted(seq, captured.logits)
    return complete_run(model, arch, tokenizer, seq, captured, options, check_cancelled, on_progress)


def complete_run(model: nn.Module, arch: Architecture, tokenizer: Any, seq: TokenSequence, captured: Captured,
                 options: AnalysisOptions, check_cancelled: CancelCheck | None = None,
                 on_progress: ProgressSink | None = None) -> AnalysisRun:
    """Scores, rankings and attributions from a captured forward: the one place a run is assembled,
    whether its forward ran alone or stacked with others (analysis/joint.py).

    ``on_progress`` hears ``done`` of ``total`` attribution units across every method (planned first)."""
    checkpoint = Checkpoint(check_cancelled, on_progress)
    for method in options.attribution:
        checkpoint.plan(work_units(model, arch, seq, method, options)[0])
    attributions = {
        method: attribute(model, arch, seq, method, options, checkpoint) for method in options.attribution
    }
    lens = logit_lens.lens_pass(arch, captured.hidden, seq.target_rows, seq.target_ids) if options.rankings else None
    return AnalysisRun(
        arch=arch,
        seq=seq,
        tokens=token_texts(tokenizer, seq.token_ids.tolist()),
        scores=score_tokens(captured.logits, seq, options.topk),
        rankings=lens[1] if lens is not None else None,
        lens=lens[0] if lens is not None else None,
        hidden=captured.hidden,
        activations=captured.activations,
        activation_layers=captured.activation_layers,
        attention=captured.attention,
        attributions=attributions,
        embedding=captured.embedding,
    )
