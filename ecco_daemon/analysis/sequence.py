"""A token sequence to analyse, teacher-forced, and the one forward every analysis shares.

Why: causal, masked and encoder-decoder models differ in which logits row predicts which token and in
which tokens may explain it. ``TokenSequence`` puts all tokens (for T5: encoder then decoder tokens)
on one axis, so attributions are (targets, tokens) matrices for every family, and ``forward_logits``
hides how each family takes its embeddings.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ecco_daemon.analysis.architecture import Architecture
from ecco_daemon.analysis.errors import InvalidArgument
from ecco_daemon.models.family import CAUSAL, ENCODER_DECODER, MASKED, Family


@dataclass(frozen=True)
class TokenSequence:
    """Tokens on one axis plus the output tokens to score.

    causal: every token; targets are the tokens from ``first_target`` on, each predicted by the row before.
    masked: every token; targets sit at the [MASK] positions, predicted by their own row.
    encoder-decoder: encoder tokens then decoder tokens (the first decoder token is the start token);
    targets are the decoder tokens after the start token.
    """

    family: Family
    token_ids: np.ndarray  # (S,) int64
    n_encoder: int  # encoder tokens at the front of token_ids (encoder-decoder only; else 0)
    target_positions: np.ndarray  # (N,) index into token_ids of each output token
    target_ids: np.ndarray  # (N,) the token each output position is scored for

    def __post_init__(self) -> None:
        if len(self.target_positions) != len(self.target_ids):
            raise InvalidArgument("target_positions and target_ids differ in length")
        if len(self.target_positions) and (
            self.target_positions.min() < 0 or self.target_positions.max() >= len(self.token_ids)
        ):
            raise InvalidArgument("a target position lies outside the sequence")

    @property
    def n_tokens(self) -> int:
        return int(len(self.token_ids))

    @property
    def n_targets(self) -> int:
        return int(len(self.target_ids))

    @property
    def n_rows(self) -> int:
        """Logit rows the model produces: every token, or every decoder token for encoder-decoder."""
        return self.n_tokens - self.n_encoder

    def prediction_row(self, position: int) -> int:
        """The logits row that predicts the token at ``position`` (position == n_tokens: the next token)."""
        if self.family == MASKED:
            row = position
        elif self.family == CAUSAL:
            row = position - 1
        else:
            row = position - self.n_encoder - 1
        if not 0 <= row < self.n_rows:
            valid = self.predictable_positions()
            raise InvalidArgument(
                f"position {position} has no prediction; valid positions are {valid[0]}..{valid[-1]}"
            )
        return row

    def predictable_positions(self) -> list[int]:
        if self.family == MASKED:
            return list(range(self.n_tokens))
        if self.family == CAUSAL:
            return list(range(1, self.n_tokens + 1))
        return list(range(self.n_encoder + 1, self.n_tokens + 1))

    @property
    def target_rows(self) -> np.ndarray:  # (N,)
        return np.array([self.prediction_row(int(p)) for p in self.target_positions], dtype=np.int64)

    def source_mask(self) -> np.ndarray:
        """(N, S) bool: which tokens may explain each output token (preceding ones; all for masked)."""
        mask = np.zeros((self.n_targets, self.n_tokens), dtype=bool)
        for n, position in enumerate(self.target_positions):
            if self.family == MASKED:
                mask[n, :] = True
            else:
                mask[n, : int(position)] = True
        return mask


def causal_sequence(token_ids: Any, first_target: int = 1) -> TokenSequence:
    """Prompt + continuation as one sequence; every token from ``first_target`` on is an output token."""
    ids = np.asarray(token_ids, dtype=np.int64).reshape(-1)
    if not 1 <= first_target <= len(ids):
        raise InvalidArgument(f"first_target must be in 1..{len(ids)}, got {first_target}")
    positions = np.arange(first_target, len(ids), dtype=np.int64)
    return TokenSequence(CAUSAL, ids, 0, positions, ids[positions])


def masked_sequence(token_ids: Any, mask_token_id: int, target_ids: Any | None = None) -> TokenSequence:
    """A sequence with [MASK] tokens; each mask is an output token, scored for ``target_ids`` if given."""
    ids = np.asarray(token_ids, dtype=np.int64).reshape(-1)
    positions = np.flatnonzero(ids == mask_token_id).astype(np.int64)
    if len(positions) == 0:
        raise InvalidArgument("a masked-LM analysis needs at least one mask token in the text")
    targets = ids[positions] if target_ids is None else np.asarray(target_ids, dtype=np.int64).reshape(-1)
    return TokenSequence(MASKED, ids, 0, positions, targets)


def seq2seq_sequence(encoder_ids: Any, decoder_ids: Any) -> TokenSequence:
    """Encoder input and decoder tokens (starting with the decoder start token) on one axis."""
    enc = np.asarray(encoder_ids, dtype=np.int64).reshape(-1)
    dec = np.asarray(decoder_ids, dtype=np.int64).reshape(-1)
    if len(dec) < 1 or len(enc) < 1:
        raise InvalidArgument("an encoder-decoder analysis needs encoder tokens and a decoder start token")
    ids = np.concatenate([enc, dec])
    positions = np.arange(len(enc) + 1, len(ids), dtype=np.int64)
    return TokenSequence(ENCODER_DECODER, ids, len(enc), positions, ids[positions])


def build_sequence(
    arch: Architecture,
    tokenizer: Any,
    input_ids: Sequence[int],
    *,
    first_target: int | None = None,
    target_ids: Sequence[int] | None = None,
) -> TokenSequence:
    """The token sequence for a request.

    causal: ``input_ids`` is prompt + continuation; output tokens start at ``first_target`` (default 1:
    every token after the first, as "analyze" does; the prompt length after a generation).
    masked: output tokens are the mask tokens of ``input_ids``, scored for ``target_ids`` if given, else
    for the model's own prediction.
    encoder-decoder: ``input_ids`` is the encoder input and ``target_ids`` the output tokens (the decoder
    start token is prepended unless already there).
    """
    ids = [int(i) for i in input_ids]
    if not ids:
        raise InvalidArgument("the text is empty after tokenization")
    if arch.family == CAUSAL:
        if len(ids) < 2:
            raise InvalidArgument("an analysis needs at least two tokens: one to read, one to score")
        return causal_sequence(ids, 1 if first_target is None else first_target)
    if arch.family == MASKED:
        if tokenizer.mask_token_id is None:
            raise InvalidArgument("the tokenizer has no mask token")
        return masked_sequence(ids, tokenizer.mask_token_id, target_ids)
    if not target_ids:
        raise InvalidArgument(
            "an encoder-decoder analysis needs the output tokens (target_ids or target text)"
        )
    start = arch.decoder_start_token_id
    start = int(start if start is not None else (tokenizer.pad_token_id or 0))
    decoder = [int(i) for i in target_ids]
    if decoder[0] != start:
        decoder = [start, *decoder]
    return seq2seq_sequence(ids, decoder)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def embed_tokens(arch: Architecture, seq: TokenSequence, device: torch.device) -> torch.Tensor:
    """Input embeddings of every token: (S, H), detached from the shared weights."""
    ids = torch.as_tensor(seq.token_ids, device=device)
    with torch.no_grad():
        return arch.input_embedding(ids).detach()


def model_kwargs(seq: TokenSequence, embeds: torch.Tensor) -> dict[str, Any]:
    """Keyword arguments for the model from embeddings of every token (B, S, H), or of a causal prefix."""
    batch = embeds.shape[0]
    if seq.family == ENCODER_DECODER:
        enc, dec = embeds[:, : seq.n_encoder], embeds[:, seq.n_encoder :]
        return {
            "inputs_embeds": enc,
            "attention_mask": torch.ones(batch, seq.n_encoder, dtype=torch.long, device=embeds.device),
            "decoder_inputs_embeds": dec,
            "use_cache": False,
        }
    # A causal prefix (attribution feeds only the tokens a target may depend on) is as long as embeds.
    mask = torch.ones(batch, embeds.shape[1], dtype=torch.long, device=embeds.device)
    kwargs: dict[str, Any] = {"inputs_embeds": embeds, "attention_mask": mask}
    if seq.family == CAUSAL:
        kwargs["use_cache"] = False
    return kwargs


def forward_logits(model: nn.Module, seq: TokenSequence, embeds: torch.Tensor) -> torch.Tensor:
    """Logits of every row for a batch of embedded sequences: embeds (B, S, H) -> (B, R, V)."""
    return model(**model_kwargs(seq, embeds)).logits


def forward_rows(model: nn.Module, seq: TokenSequence, embeds: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Logits of the chosen rows only: embeds (B, S', H), rows (C,) -> (B, C, V).

    Why: attribution needs a few rows, and projecting every row through the unembedding (49k columns for
    SmolLM2), then back in the backward pass, costs as much as several layers. Models whose forward takes
    ``logits_to_keep`` project only those rows; others project all and are sliced.
    """
    if _takes_logits_to_keep(type(model)):
        return model(**model_kwargs(seq, embeds), logits_to_keep=rows).logits
    return forward_logits(model, seq, embeds)[:, rows]


@functools.cache
def _takes_logits_to_keep(model_class: type) -> bool:
    return "logits_to_keep" in inspect.signature(model_class.forward).parameters
