"""One teacher-forced forward that records what the views need: logits, every layer's residual state,
MLP activations at every position, and (with eager attention) attention weights.

Why: the layer states, activations and attention of one run answer every later view (logit lens at
any position, rankings_watch with any tokens, NMF with any factor count) without another model run.
The hooks are scoped to this call (see ``architecture.capture_io``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ecco_daemon.analysis.architecture import Architecture, capture_io
from ecco_daemon.analysis.errors import InvalidArgument, NotCaptured
from ecco_daemon.analysis.sequence import TokenSequence, embed_tokens, model_device, model_kwargs
from ecco_daemon.models.family import ENCODER_DECODER

EMBEDDING = "embedding"  # the key of the first layer's input among the recorded inputs


@dataclass
class Captured:
    logits: torch.Tensor  # (R, V) on the model's device
    hidden: np.ndarray  # (L, R, H) float32: output of each decoder layer, before the final norm
    activations: np.ndarray | None  # (La, S, I) float32: input of each chosen layer's MLP down projection
    activation_layers: np.ndarray  # (La,) layer indexes of ``activations``
    attention: dict[str, np.ndarray] | None  # "self": (L, heads, R, R); T5 adds "cross", "encoder"
    embedding: np.ndarray | None = None  # (R, H) float32: the input of the first layer (Ecco's embedding_states)


def resolve_layers(arch: Architecture, layers: Sequence[int] | None) -> list[int]:
    """Chosen layer indexes (negative counts from the end); None means every layer."""
    n = arch.n_layers
    if layers is None:
        return list(range(n))
    resolved = []
    for layer in layers:
        index = layer + n if layer < 0 else layer
        if not 0 <= index < n:
            raise InvalidArgument(f"layer {layer} out of range; the model has layers 0..{n - 1}")
        resolved.append(index)
    return sorted(set(resolved))


def _activation_modules(arch: Architecture, layers: list[int]) -> dict[str, nn.Module]:
    modules = {f"dec{i}": arch.decoder.mlp_down[i] for i in layers}
    if arch.encoder is not None:
        modules.update(
            {f"enc{i}": arch.encoder.mlp_down[i] for i in layers if i < len(arch.encoder.mlp_down)}
        )
    return modules


def _input_modules(arch: Architecture, layers: list[int]) -> dict[str, nn.Module]:
    """Modules whose input a forward records: the chosen MLP down projections, and the first layer
    (its input is the embedding output, positions included, as Hugging Face's first hidden state)."""
    return {**_activation_modules(arch, layers), EMBEDDING: arch.decoder.layers[0]}


def _stack_attention(attentions: tuple[torch.Tensor, ...] | None, what: str) -> np.ndarray:
    if not attentions or any(a is None for a in attentions):
        raise NotCaptured(
            f"the model returned no {what} weights; load it with attn_implementation='eager' to see attention"
        )
    return torch.stack([a[0] for a in attentions]).float().cpu().numpy()  # (L, heads, Q, K)


def capture_forward(
    model: nn.Module,
    arch: Architecture,
    seq: TokenSequence,
    *,
    activation_layers: Sequence[int] | None = None,
    activations: bool = True,
    attention: bool = False,
) -> Captured:
    """Run ``seq`` once, without gradients, recording states, activations and attention."""
    device = model_device(model)
    layers = resolve_layers(arch, activation_layers) if activations else []
    layer_modules = {str(i): layer for i, layer in enumerate(arch.decoder.layers)}
    kwargs = model_kwargs(seq, embed_tokens(arch, seq, device).unsqueeze(0))
    if attention:
        kwargs["output_attentions"] = True
    with (
        torch.no_grad(),
        capture_io(layer_modules, inputs=False) as states,
        capture_io(_input_modules(arch, layers), inputs=True) as acts,
    ):
        output = model(**kwargs)
    hidden = torch.stack([states[str(i)][0] for i in range(arch.n_layers)]).float().cpu().numpy()
    activation_array = None
    if layers:
        rows = []
        for i in layers:
            decoder_part = acts[f"dec{i}"][0].float()  # (R, I)
            if arch.encoder is not None and f"enc{i}" in acts:
                decoder_part = torch.cat([acts[f"enc{i}"][0].float(), decoder_part])  # (S, I)
            rows.append(decoder_part)
        activation_array = torch.stack(rows).cpu().numpy()
    attention_arrays = None
    if attention:
        if seq.family == ENCODER_DECODER:
            attention_arrays = {
                "self": _stack_attention(output.decoder_attentions, "decoder attention"),
                "cross": _stack_attention(output.cross_attentions, "cross attention"),
                "encoder": _stack_attention(output.encoder_attentions, "encoder attention"),
            }
        else:
            attention_arrays = {"self": _stack_attention(output.attentions, "attention")}
    return Captured(
        logits=output.logits[0],
        hidden=hidden,
        activations=activation_array,
        activation_layers=np.asarray(layers, dtype=np.int64),
        attention=attention_arrays,
        embedding=acts[EMBEDDING][0].float().cpu().numpy(),
    )
