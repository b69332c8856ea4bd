"""Teacher-forced token scores: probability, entropy, rank and alternatives of every output token.

Why: "analysis of given text" scores each token of a selection as if the model had generated it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ecco_daemon.analysis.sequence import TokenSequence


@dataclass
class TokenScores:
    """Scores of the output tokens of one sequence."""

    positions: np.ndarray  # (N,) index into the sequence's tokens
    token_ids: np.ndarray  # (N,) the scored tokens
    probs: np.ndarray  # (N,) float32 probability of the token
    log_probs: np.ndarray  # (N,) float32
    entropy: np.ndarray  # (N,) float32 entropy of the predicted distribution, in nats
    ranks: np.ndarray  # (N,) int32, 1 = the model's top choice
    topk_ids: np.ndarray  # (N, k) the model's alternatives, best first
    topk_probs: np.ndarray  # (N, k) float32

    @property
    def nbytes(self) -> int:
        return int(sum(getattr(self, name).nbytes for name in self.__dataclass_fields__))


def rank_of(logits: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
    """1-based rank of each token: logits (..., V), token_ids (..., W) -> (..., W) int32."""
    chosen = logits.gather(-1, token_ids)  # (..., W)
    return ((logits.unsqueeze(-2) > chosen.unsqueeze(-1)).sum(-1) + 1).to(torch.int32)


def score_tokens(logits: torch.Tensor, seq: TokenSequence, topk: int = 10) -> TokenScores:
    """Scores from the logits of every row: logits (R, V)."""
    rows = torch.as_tensor(seq.target_rows, device=logits.device)
    targets = torch.as_tensor(seq.target_ids, device=logits.device)
    selected = logits[rows].float()  # (N, V)
    log_probs = torch.log_softmax(selected, dim=-1)
    probs = log_probs.exp()
    entropy = -(probs * log_probs).sum(-1)
    target_log_probs = log_probs.gather(-1, targets[:, None])[:, 0]
    top = probs.topk(min(topk, probs.shape[-1]), dim=-1)
    return TokenScores(
        positions=seq.target_positions.copy(),
        token_ids=seq.target_ids.copy(),
        probs=target_log_probs.exp().cpu().numpy(),
        log_probs=target_log_probs.cpu().numpy(),
        entropy=entropy.cpu().numpy(),
        ranks=rank_of(selected, targets[:, None])[:, 0].cpu().numpy(),
        topk_ids=top.indices.cpu().numpy(),
        topk_probs=top.values.cpu().numpy(),
    )
