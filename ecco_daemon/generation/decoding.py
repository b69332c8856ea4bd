"""Token-by-token decoding with the model's probability and top-k alternatives at every step.

Our own loop rather than ``model.generate`` because each step is streamed, checked for cancellation,
and scored with the model's own (untempered) distribution, as Ecco reports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ecco_daemon.generation.static_cache import (
    StaticSteps,
    cache_kwargs,
    full_attention_only,
    returned_cache,
    static_decoder,
)
from ecco_daemon.models.family import CAUSAL
from ecco_daemon.models.loaded import LoadedModel


@dataclass(frozen=True)
class SamplingParams:
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None


@dataclass
class Step:
    token_id: int
    prob: float
    top_ids: np.ndarray  # (k,)
    top_probs: np.ndarray  # (k,)


@dataclass
class GenerationOutput:
    input_ids: list[int]
    generated_ids: list[int] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    stop_reason: str = "length"

    @property
    def all_ids(self) -> list[int]:
        return self.input_ids + self.generated_ids


def choose_token(logits: torch.Tensor, sampling: SamplingParams, generator: torch.Generator | None) -> int:
    """Greedy argmax, or a draw after temperature, top-k and top-p filtering. logits: (V,)"""
    if not sampling.do_sample:
        return int(torch.argmax(logits))
    scores = logits / max(sampling.temperature, 1e-6)
    if sampling.top_k > 0:
        kth = torch.topk(scores, min(sampling.top_k, scores.shape[-1])).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if sampling.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=True)
        cumulative = torch.softmax(sorted_scores, dim=-1).cumsum(dim=-1)
        # Keep the smallest prefix whose mass reaches top_p (always at least one token).
        drop = cumulative - torch.softmax(sorted_scores, dim=-1) >= sampling.top_p
        scores = scores.scatter(0, order[drop], float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def score_step(logits: torch.Tensor, sampling: SamplingParams, generator: torch.Generator | None,
               alternatives: int) -> Step:
    """Choose the next token from logits (V,) and record the model's probability of it and the top-k."""
    probs = torch.softmax(logits, dim=-1)
    token_id = choose_token(logits, sampling, generator)
    k = min(alternatives, probs.shape[-1])
    top = torch.topk(probs, k) if k > 0 else None
    return Step(
        token_id=token_id,
        prob=float(probs[token_id]),
        top_ids=top.indices.cpu().numpy().astype(np.int64) if top is not None else np.zeros(0, np.int64),
        top_probs=top.values.cpu().numpy().astype(np.float32) if top is not None else np.zeros(0, np.float32),
    )


class _EagerSteps:
    """The eager loop: one forward a token over a growing DynamicCache; encoder-decoder models too."""

    def __init__(self, lm: LoadedModel) -> None:
        self.model, self.device = lm.model, lm.device
        self.cache: Any = None
        self.encoder_outputs: Any = None

    def prompt(self, input_ids: list[int]) -> torch.Tensor:
        """Logits (V,) after the prompt (for an encoder-decoder: after the decoder's start token)."""
        ids = torch.tensor([input_ids], device=self.device)  # (1, T)
        if not getattr(self.model.config, "is_encoder_decoder", False):
            return self._forward(ids)
        self.encoder_outputs = self.model.get_encoder()(input_ids=ids)
        start = self.model.config.decoder_start_token_id
        return self._forward(torch.tensor([[start if start is not None else 0]], device=self.device))

    def step(self, token_id: int) -> torch.Tensor:
        return self._forward(torch.tensor([[token_id]], device=self.device))

    def _forward(self, ids: torch.Tensor) -> torch.Tensor:
        inputs = ({"input_ids": ids} if self.encoder_outputs is None
                  else {"encoder_outputs": self.encoder_outputs, "decoder_input_ids": ids})
        out = self.model(**inputs, **cache_kwargs(self.model, self.cache), use_cache=True)
        self.cache = returned_cache(out)
        return out.logits[0, -1].float()


class _Logits:
    """Where one request's logits come from: the model's static cache and compiled step when it has them
    (static_decode.py), else the eager loop.

    If the static path fails, the request goes on eagerly from the tokens fed so far (one prefill of them),
    so its remaining tokens are those of the eager loop: the sampling generator has made the same draws.
    """

    def __init__(self, lm: LoadedModel, input_ids: list[int], max_new_tokens: int) -> None:
        self.lm = lm
        self.fed = list(input_ids)
        decoder = static_decoder(lm) if max_new_tokens > 1 else None  # one token needs no decode step
        self.static: StaticSteps | None = decoder.open(len(input_ids) + max_new_tokens) if decoder else None
        self.eager = None if self.static is not None else _EagerSteps(lm)

    def prompt(self) -> torch.Tensor:
        return self._run(lambda steps: steps.prompt(self.fed))

    def step(self, token_id: int) -> torch.Tensor:
        self.fed.append(token_id)
        return self._run(lambda steps: steps.step(token_id))

    def close(self) -> None:
        if self.static is not None:
            self.static.close()

    def _run(self, call: Callable[[Any], torch.Tensor]) -> torch.Tensor:
        if self.static is None:
            assert self.eager is not None
            return call(self.eager)
        try:
            return call(self.static)
        except torch.cuda.OutOfMemoryError:
            raise  # this request's size, not the static path: answered as out of memory, the path stays
        except Exception as exc:  # compiling or a compiled step failed: logged once, eager for good
            self.static.fail(exc)
            self.static = None
            self.eager = _EagerSteps(self.lm)
            return self.eager.prompt(self.fed)


def generate(
    lm: LoadedModel,
    input_ids: list[int],
    max_new_tokens: int,
    sampling: SamplingParams,
    alternatives: int = 5,
    on_step: Callable[[int, Step], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> GenerationOutput:
    """Decode one request alone: each step is scored, streamed to ``on_step`` and may be cancelled."""
    output = GenerationOutput(input_ids=list(input_ids))
    if max_new_tokens <= 0:
        return output
    generator = _seeded_generator(sampling, lm.device)
    with torch.inference_mode():  # the static cache is made and cleared in inference mode too
        logits_for = _Logits(lm, input_ids, max_new_tokens)
        try:
            for step_index in range(max_new_tokens):
                if check_cancelled is not None:
                    check_cancelled()
                logits = logits_for.prompt() if step_index == 0 else logits_for.step(output.generated_ids[-1])
                step = score_step(logits, sampling, generator, alternatives)
                output.generated_ids.append(step.token_id)
                output.steps.append(step)
                if on_step is not None:
                    on_step(step_index, step)
                if step.token_id in lm.stop_token_ids:
                    output.stop_reason = "stop_token"
                    break
        finally:
            logits_for.close()
    return output


# -- batched decoding ------------------------------------------------------------------------------------


def can_batch(lm: LoadedModel) -> bool:
    """Decoder-only models with a plain growing key/value cache; others decode one request at a time."""
    config = lm.model.config
    return not getattr(config, "is_encoder_decoder", False) and lm.family == CAUSAL and full_attention_only(config)


def position_limit(lm: LoadedModel) -> int | None:
    """How many positions a model with learned position embeddings has (GPT-2: n_positions); None when
    positions are computed (rotary), which has no hard end.

    Why it matters: past it the embedding lookup fails, and on CUDA that failure is a device-side assert
    that poisons the process's CUDA context for every user. Requests must be refused before reaching it.
    """
    if "position_limit" in lm.extra:  # computed once per model: prepare() asks on every request
        return lm.extra["position_limit"]
    model, config = lm.model, lm.model.config
    learned = any(isinstance(module, torch.nn.Embedding) and any(part in name.rsplit(".", 1)[-1]
                                                                 for part in ("wpe", "pos"))
                  for name, module in model.named_modules())
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    lm.extra["position_limit"] = int(limit) if learned and limit else None
    return lm.extra["position_limit"]


class PositionLimitError(ValueError):
    """A row would need a position past the model's last one."""


@dataclass(eq=False)
class DecodeRow:
    """One request's decoding state inside a batch: its own sampling, stop rule, stream and outcome."""

    input_ids: list[int]
    max_new_tokens: int
    sampling: SamplingParams
    alternatives: int = 5
    on_step: Callable[[int, Step], None] | None = None
    tag: object = None  # the caller's handle (a job)
    output: GenerationOutput = field(init=False)
    generator: torch.Generator | None = field(init=False, default=None)
    done: bool = field(init=False, default=False)
    error: BaseException | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.output = GenerationOutput(input_ids=list(self.input_ids))
        self.done = self.max_new_tokens <= 0

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done = True


def _seeded_generator(sampling: SamplingParams, device: torch.device) -> torch.Generator | None:
    if not sampling.do_sample:
        return None
    generator = torch.Generator(device=device)
    if sampling.seed is not None:
        generator.manual_seed(sampling.seed)
    else:
        generator.seed()
    return generator


def _left_pad(tensor: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    missing = length - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


class BatchDecoder:
    """Decodes many requests in one forward pass per step; requests join and leave between steps.

    Rows are left-padded to a common cache length; the attention mask hides the padding and explicit
    position ids give every row the positions it would have alone, so each row's tokens are those of
    solo decoding. Finished, cancelled or failed rows leave at once and the padding they needed goes.
    """

    def __init__(self, lm: LoadedModel) -> None:
        if not can_batch(lm):
            raise ValueError(f"{lm.name} cannot decode in batches")
        self.lm = lm
        # Rows are refused before a pass that would need a position the model lacks (see position_limit).
        self.max_positions = position_limit(lm)
        self.rows: list[DecodeRow] = []
        self._cache: Any = None  # DynamicCache over self.rows, (B, H, L, D) per layer
        self._mask: torch.Tensor | None = None  # (B, L) 1 for real tokens, 0 for padding
        self._positions: torch.Tensor | None = None  # (B,) position id of each row's next token

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, rows: list[DecodeRow]) -> None:
        """Prefill new rows together and choose their first tokens; a row that fails alone fails alone."""
        rows = [r for r in rows if not r.done]
        for row in rows:
            if self.max_positions is not None and len(row.input_ids) > self.max_positions:
                row.fail(PositionLimitError(f"{len(row.input_ids)} input tokens; {self.lm.name} has "
                                            f"{self.max_positions} positions"))
        rows = [r for r in rows if not r.done]
        if not rows:
            return
        for row in rows:
            row.generator = _seeded_generator(row.sampling, self.lm.device)
        try:
            self._prefill(rows)
        except Exception:
            if len(rows) == 1:
                raise
            # One row (a huge prompt, say) may be what failed: retry each alone so only it gets the error.
            for row in rows:
                try:
                    self._prefill([row])
                except Exception as exc:  # answered to that row's request only
                    row.fail(exc)

    def step(self) -> list[DecodeRow]:
        """One decoding step for every row; returns the rows that finished (done, failed or stopped)."""
        stopped = self._stop_rows_out_of_positions()
        if not self.rows:
            return stopped
        assert self._mask is not None and self._positions is not None
        last = torch.tensor([[r.output.generated_ids[-1]] for r in self.rows], device=self.lm.device)  # (B, 1)
        mask = torch.cat([self._mask, self._mask.new_ones(len(self.rows), 1)], dim=1)  # (B, L+1)
        length = self._mask.shape[1]
        try:
            with torch.inference_mode():
                out = self.lm.model(input_ids=last, attention_mask=mask, position_ids=self._positions[:, None],
                                    use_cache=True, **cache_kwargs(self.lm.model, self._cache))
            logits: list[torch.Tensor | None] = list(out.logits[:, -1].float())  # B x (V,)
        except Exception:
            if len(self.rows) == 1:
                raise
            # One row (past the model's positions, say) may be what failed: step each alone, fail only it.
            logits = self._step_each_alone(last, mask, length)
        self._mask = mask
        self._positions = self._positions + 1
        for row, row_logits in zip(self.rows, logits, strict=True):
            if row_logits is not None:
                self._advance(row, row_logits)
        return stopped + self.drop_finished()

    def _stop_rows_out_of_positions(self) -> list[DecodeRow]:
        if self.max_positions is None or self._positions is None:
            return []
        for row, position in zip(self.rows, self._positions.tolist(), strict=True):
            if position >= self.max_positions:
                row.fail(PositionLimitError(f"{self.lm.name} has {self.max_positions} positions; this generation "
                                            f"reached the last one after {len(row.output.generated_ids)} tokens"))
        return self.drop_finished()

    def _step_each_alone(self, last: torch.Tensor, mask: torch.Tensor, length: int) -> list[torch.Tensor | None]:
        """The failed batched step redone row by row; a failing row is marked failed, the others advance."""
        from transformers import DynamicCache

        assert self._positions is not None
        layers = self._cache.layers
        for layer in layers:  # undo what the failed pass appended before it broke
            layer.keys, layer.values = layer.keys[:, :, :length], layer.values[:, :, :length]
        new_keys: list[list[torch.Tensor]] = [[] for _ in layers]
        new_values: list[list[torch.Tensor]] = [[] for _ in layers]
        logits: list[torch.Tensor | None] = []
        for i, row in enumerate(self.rows):
            alone = DynamicCache(ddp_cache_data=[(layer.keys[i:i + 1], layer.values[i:i + 1]) for layer in layers])
            try:
                with torch.inference_mode():
                    out = self.lm.model(input_ids=last[i:i + 1], attention_mask=mask[i:i + 1],
                                        position_ids=self._positions[i:i + 1, None], use_cache=True,
                                        **cache_kwargs(self.lm.model, alone))
            except Exception as exc:  # answered to that row's request only
                row.fail(exc)
                logits.append(None)
                for j, layer in enumerate(layers):  # a placeholder column; the row leaves after this step
                    new_keys[j].append(layer.keys[i:i + 1, :, -1:].clone())
                    new_values[j].append(layer.values[i:i + 1, :, -1:].clone())
                continue
            logits.append(out.logits[0, -1].float())
            for j, layer in enumerate(returned_cache(out).layers):
                new_keys[j].append(layer.keys[:, :, -1:])
                new_values[j].append(layer.values[:, :, -1:])
        for j, layer in enumerate(layers):
            layer.keys = torch.cat([layer.keys, torch.cat(new_keys[j])], dim=2)
            layer.values = torch.cat([layer.values, torch.cat(new_values[j])], dim=2)
        return logits

    def drop_finished(self, extra: list[DecodeRow] | None = None) -> list[DecodeRow]:
        """Take finished rows (and ``extra`` ones, e.g. cancelled) out of the batch; returns them."""
        leaving = [r for r in self.rows if r.done or (extra is not None and r in extra)]
        if not leaving:
            return []
        keep = [i for i, r in enumerate(self.rows) if r not in leaving]
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self._cache = self._mask = self._positions = None
            return leaving
        index = torch.tensor(keep, device=self.lm.device)
        assert self._mask is not None and self._positions is not None
        self._mask, self._positions = self._mask[index], self._positions[index]
        # Columns that are padding in every remaining row are dead weight.
        start = int(self._mask.any(dim=0).nonzero()[0])
        self._mask = self._mask[:, start:]
        for layer in self._cache.layers:
            layer.keys = layer.keys[index, :, start:]
            layer.values = layer.values[index, :, start:]
        return leaving

    # -- internals --------------------------------------------------------------------------------

    def _prefill(self, rows: list[DecodeRow]) -> None:
        from transformers import DynamicCache

        device = self.lm.device
        length = max(len(r.input_ids) for r in rows)
        ids = torch.zeros(len(rows), length, dtype=torch.long, device=device)  # (b, T), left-padded
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=device)  # (b, T)
        for i, row in enumerate(rows):
            ids[i, length - len(row.input_ids):] = torch.tensor(row.input_ids, device=device)
            mask[i, length - len(row.input_ids):] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)  # (b, T)
        with torch.inference_mode():
            out = self.lm.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                                use_cache=True, **cache_kwargs(self.lm.model, DynamicCache()))
        logits = out.logits[:, -1].float()  # (b, V)
        self._merge(rows, returned_cache(out), mask, positions[:, -1] + 1)
        for i, row in enumerate(rows):
            self._advance(row, logits[i])

    def _merge(self, rows: list[DecodeRow], cache: Any, mask: torch.Tensor, positions: torch.Tensor) -> None:
        if self._cache is None:
            self.rows, self._cache, self._mask, self._positions = list(rows), cache, mask, positions
            return
        assert self._mask is not None and self._positions is not None
        length = max(self._mask.shape[1], mask.shape[1])
        for old, new in zip(self._cache.layers, cache.layers, strict=True):
            old.keys = torch.cat([_left_pad(old.keys, length, 2), _left_pad(new.keys, length, 2)])
            old.values = torch.cat([_left_pad(old.values, length, 2), _left_pad(new.values, length, 2)])
        self._mask = torch.cat([_left_pad(self._mask, length, 1), _left_pad(mask, length, 1)])
        self._positions = torch.cat([self._positions, positions])
        self.rows += rows

    def _advance(self, row: DecodeRow, logits: torch.Tensor) -> None:
        """Score and choose the row's next token from its logits (V,); streams it; marks the row done."""
        if row.done:
            return
        step = score_step(logits, row.sampling, row.generator, row.alternatives)
        token_id = step.token_id
        output = row.output
        output.generated_ids.append(token_id)
        output.steps.append(step)
        if row.on_step is not None:
            try:
                row.on_step(len(output.steps) - 1, step)
            except Exception as exc:  # a broken stream ends that row, not the batch
                row.fail(exc)
                return
        if token_id in self.lm.stop_token_ids:
            output.stop_reason = "stop_token"
            row.done = True
        elif len(output.generated_ids) >= row.max_new_tokens:
            row.done = True

