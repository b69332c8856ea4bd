"""Logit lens: what each layer would predict, read through the model's own final norm and unembedding.

Why: Ecco applied the LM head to raw hidden states and skipped the final norm. Here every layer's state
goes through the final norm with its own statistics (LayerNorm/RMSNorm normalize each vector by
itself), then the unembedding, so the last layer's predictions are exactly the model's logits.
Layer states are kept on the host as (L, R, H); projecting them is cheap and needs no model run.
"""

from __future__ import annotations

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
    n_layers = hidden.shape[0]
    out = np.empty((n_layers, len(rows)), dtype=np.int32)
    targets = torch.as_tensor(token_ids, dtype=torch.long)
    step = max(1, ELEMENTS_PER_PROJECTION // max(1, n_layers * arch.vocab_size))
    for start in range(0, len(rows), step):
        stop = min(len(rows), start + step)
        logits = lens_logits(arch, hidden[:, rows[start:stop]])  # (L, M, V)
        index = targets[start:stop].to(logits.device)[None, :, None].expand(n_layers, -1, 1)
        out[:, start:stop] = rank_of(logits, index)[..., 0].cpu().numpy()
    return out


def rankings_watch(arch: Architecture, hidden: np.ndarray, row: int, watch: np.ndarray) -> np.ndarray:
    """1-based rank of every watched token at one row, in every layer: -> (L, W) int32."""
    logits = lens_logits(arch, hidden[:, row])  # (L, V)
    index = torch.as_tensor(watch, dtype=torch.long, device=logits.device)[None, :].expand(
        logits.shape[0], -1
    )
    return rank_of(logits, index).cpu().numpy()
