"""Token-by-token decoding with the model's probability and top-k alternatives at every step.

Our own loop rather than ``model.generate`` because each step is streamed, checked for cancellation,
and scored with the model's own (untempered) distribution, as Ecco reports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .models.loaded import LoadedModel


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


def generate(
    lm: LoadedModel,
    input_ids: list[int],
    max_new_tokens: int,
    sampling: SamplingParams,
    alternatives: int = 5,
    on_step: Callable[[int, Step], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> GenerationOutput:
    model, device = lm.model, lm.device
    output = GenerationOutput(input_ids=list(input_ids))
    generator = None
    if sampling.do_sample:
        generator = torch.Generator(device=device)
        if sampling.seed is not None:
            generator.manual_seed(sampling.seed)
        else:
            generator.seed()
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    ids = torch.tensor([input_ids], device=device)  # (1, T)
    with torch.inference_mode():
        if encoder_decoder:
            encoder_outputs = model.get_encoder()(input_ids=ids)
            start = model.config.decoder_start_token_id
            step_input = torch.tensor([[start if start is not None else 0]], device=device)
        else:
            step_input = ids
        past = None
        for step_index in range(max_new_tokens):
            if check_cancelled is not None:
                check_cancelled()
            if encoder_decoder:
                out = model(encoder_outputs=encoder_outputs, decoder_input_ids=step_input,
                            past_key_values=past, use_cache=True)
            else:
                out = model(input_ids=step_input, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1].float()  # (V,)
            probs = torch.softmax(logits, dim=-1)
            token_id = choose_token(logits, sampling, generator)
            k = min(alternatives, probs.shape[-1])
            top = torch.topk(probs, k) if k > 0 else None
            step = Step(
                token_id=token_id,
                prob=float(probs[token_id]),
                top_ids=top.indices.cpu().numpy().astype(np.int64) if top is not None else np.zeros(0, np.int64),
                top_probs=top.values.cpu().numpy().astype(np.float32) if top is not None else np.zeros(0, np.float32),
            )
            output.generated_ids.append(token_id)
            output.steps.append(step)
            if on_step is not None:
                on_step(step_index, step)
            if token_id in lm.stop_token_ids:
                output.stop_reason = "stop_token"
                break
            step_input = torch.tensor([[token_id]], device=device)
    return output
