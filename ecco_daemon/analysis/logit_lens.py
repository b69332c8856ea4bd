"""Logit lens: what each layer would predict, read through the model's own final norm and unembedding.

Why: Ecco applied the LM head to raw hidden states and skipped the final norm. Here every layer's state
goes through the final norm with its own statistics (LayerNorm/RMSNorm normalize each vector by
itself), then the unembedding, so the last layer's predictions are exactly the model's logits.
Layer states are kept on the host as (L, R, H); projecting them needs no model run, and every row's
top predictions are projected once per run (``LensTable``).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from ecco_daemon.analysis.architecture import Architecture
from ecco_daemon.analysis.scores import rank_of

ELEMENTS_PER_PROJECTION = 1 << 24  # bound on layers x rows x vocabulary logits held at once (64 MiB)


@dataclass
class LayerPredictions:
    """Top-k predictions of every layer at one position."""

    position: int  # the token position being predicted
    layers: np.ndarray  # (L,) layer indexes
    token_ids: np.ndarray  # (L, k) best first
    probs: np.ndarray  # (L, k) float32 softmax probabilities at that layer
    actual_id: int | None = None  # the token that is at the position (None: the one after the text)
    actual_probs: np.ndarray | None = None  # (L,) float32: its probability at each layer
    actual_ranks: np.ndarray | None = None  # (L,) int32: its 1-based rank at each layer


def _to_device(arch: Architecture, states: np.ndarray) -> torch.Tensor:
    weight = next(arch.unembedding.parameters())
    return torch.from_numpy(np.ascontiguousarray(states)).to(device=weight.device, dtype=weight.dtype)


def lens_logits(arch: Architecture, states: np.ndarray) -> torch.Tensor:
    """Logits of layer states: states (..., H) -> (..., V) float32."""
    with torch.no_grad():
        return arch.lens_logits(_to_device(arch, states)).float()


def layer_predictions(
    arch: Architecture,
    hidden: np.ndarray,
    row: int,
    position: int,
    topk: int = 10,
    layers: list[int] | None = None,
    actual: int | None = None,
) -> LayerPredictions:
    """Top-k of every (or the chosen) layer at logits row ``row``: hidden (L, R, H); with ``actual``, where
    that token stands at each layer too, whether or not it made the top-k."""
    chosen = list(range(hidden.shape[0])) if layers is None else layers
    logits = lens_logits(arch, hidden[chosen, row])  # (L, V)
    probs = torch.softmax(logits, dim=-1)
    top = probs.topk(min(topk, logits.shape[-1]), dim=-1)
    predictions = LayerPredictions(
        position=position,
        layers=np.asarray(chosen, dtype=np.int64),
        token_ids=top.indices.cpu().numpy(),
        probs=top.values.cpu().numpy(),
    )
    if actual is not None:
        index = torch.full((len(chosen), 1), actual, dtype=torch.long, device=logits.device)
        predictions.actual_id = actual
        predictions.actual_probs = probs[:, actual].cpu().numpy()
        predictions.actual_ranks = rank_of(logits, index)[:, 0].cpu().numpy().astype(np.int32)
    return predictions


def rankings(arch: Architecture, hidden: np.ndarray, rows: np.ndarray, token_ids: np.ndarray) -> np.ndarray:
    """1-based rank of ``token_ids[n]`` at row ``rows[n]`` in every layer: -> (L, N) int32."""
    return lens_pass(arch, hidden, rows, token_ids, table_k=0)[1]


@dataclass
class LensTable:
    """Every layer's top ``k`` predictions at every row, projected once per run.

    Why: a panel or notebook asks for layer predictions at each position a user picks; projecting every
    layer through the vocabulary costs tens of milliseconds per position (the unembedding matrix is read
    whole each time), a lookup in this table costs nothing. It is filled in the same pass that ranks
    the output tokens, so an analysis that computes rankings pays only a softmax and a top-k more.
    """

    token_ids: np.ndarray  # (L, R, k) int32, best first
    probs: np.ndarray  # (L, R, k) float32
    target_probs: np.ndarray  # (L, N) float32: each output token's probability at every layer

    @property
    def k(self) -> int:
        return int(self.token_ids.shape[-1])

    @property
    def nbytes(self) -> int:
        return int(self.token_ids.nbytes + self.probs.nbytes + self.target_probs.nbytes)

    def predictions(self, row: int, position: int, topk: int, layers: list[int] | None,
                    actual: tuple[int, int] | None, ranks: np.ndarray) -> LayerPredictions:
        """The top ``topk`` at ``row``; with ``actual`` (the output token at ``position``: its index among
        the outputs, its id), where it stands, from the same pass's ``ranks`` (L, N)."""
        chosen = list(range(self.token_ids.shape[0])) if layers is None else layers
        predictions = LayerPredictions(
            position=position,
            layers=np.asarray(chosen, dtype=np.int64),
            token_ids=self.token_ids[chosen, row, :topk].astype(np.int64),
            probs=self.probs[chosen, row, :topk].copy(),
        )
        if actual is not None:
            target, predictions.actual_id = actual
            predictions.actual_probs = self.target_probs[chosen, target].copy()
            predictions.actual_ranks = ranks[chosen, target].astype(np.int32)
        return predictions


TABLE_K = 50  # predictions kept per layer and row; a view asking for more projects its row anew


def table_bytes(n_layers: int, n_rows: int, k: int = TABLE_K) -> int:
    return n_layers * n_rows * (k * 8 + 4)


def lens_pass(arch: Architecture, hidden: np.ndarray, rows: np.ndarray, token_ids: np.ndarray,
              table_k: int = TABLE_K) -> tuple[LensTable | None, np.ndarray]:
    """One projection of the rows through every layer's lens: the ranks of ``token_ids[n]`` at ``rows[n]``
    (L, N) int32, and (``table_k`` > 0) the LensTable of every row. hidden (L, R, H)."""
    n_layers, n_rows = hidden.shape[:2]
    projected = np.arange(n_rows) if table_k else np.asarray(rows, dtype=np.int64)
    k = min(table_k, arch.vocab_size)
    table = LensTable(np.empty((n_layers, n_rows, k), np.int32), np.empty((n_layers, n_rows, k), np.float32),
                      np.empty((n_layers, len(rows)), np.float32))
    ranks = np.empty((n_layers, len(rows)), dtype=np.int32)
    wanted = {int(r): [n for n, row in enumerate(rows) if row == r] for r in set(np.asarray(rows).tolist())}
    step = max(1, ELEMENTS_PER_PROJECTION // max(1, n_layers * arch.vocab_size))
    for start in range(0, len(projected), step):
        chunk = projected[start : start + step]
        logits = lens_logits(arch, hidden[:, chunk])  # (L, M, V)
        probs = torch.softmax(logits, dim=-1) if k else None
        if probs is not None:
            top = probs.topk(k, dim=-1)
            table.token_ids[:, chunk] = top.indices.cpu().numpy()
            table.probs[:, chunk] = top.values.cpu().numpy()
        local = [(m, n) for m, row in enumerate(chunk.tolist()) for n in wanted.get(row, [])]
        if local:
            at = torch.as_tensor([m for m, _ in local], device=logits.device)
            ids = torch.as_tensor([int(token_ids[n]) for _, n in local], device=logits.device)
            index = ids[None, :, None].expand(n_layers, -1, 1)
            targets = [n for _, n in local]
            ranks[:, targets] = rank_of(logits[:, at], index)[..., 0].cpu().numpy()
            if probs is not None:
                table.target_probs[:, targets] = probs[:, at].gather(-1, index)[..., 0].cpu().numpy()
    return (table if k else None), ranks


class RecentRows:
    """The logits of the rows projected last (process-wide, bounded in bytes), for rankings_watch.

    Why: someone watching tokens at one position changes the watched tokens more often than the position;
    each change then needs no projection. Keyed by the run's state array, held weakly: a dropped run's
    rows are never served to another.
    """

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._rows: OrderedDict[tuple[int, int], tuple[weakref.ref, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()

    def logits(self, arch: Architecture, hidden: np.ndarray, row: int) -> torch.Tensor:
        key = (id(hidden), row)
        with self._lock:
            found = self._rows.get(key)
            if found is not None and found[0]() is hidden:
                self._rows.move_to_end(key)
                return found[1]
        logits = lens_logits(arch, hidden[:, row])  # (L, V)
        with self._lock:
            self._rows[key] = (weakref.ref(hidden), logits)
            while sum(t.nbytes for _, t in self._rows.values()) > self.max_bytes and len(self._rows) > 1:
                self._rows.popitem(last=False)
        return logits


RECENT_ROWS = RecentRows()


def rankings_watch(arch: Architecture, hidden: np.ndarray, row: int, watch: np.ndarray) -> np.ndarray:
    """1-based rank of every watched token at one row, in every layer: -> (L, W) int32."""
    logits = RECENT_ROWS.logits(arch, hidden, row)  # (L, V)
    index = torch.as_tensor(watch, dtype=torch.long, device=logits.device)[None, :].expand(
        logits.shape[0], -1
    )
    return rank_of(logits, index).cpu().numpy()
