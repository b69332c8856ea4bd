"""A model held in memory with what the daemon needs to serve it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from ecco_daemon.models.family import CAUSAL, Family
from ecco_daemon.models.options import dtype_name
from ecco_daemon.models.tokens import special_tokens


@dataclass
class LoadedModel:
    """One loaded model, its tokenizer and where it lives; shared read-only by every request."""

    name: str
    source: str
    model: torch.nn.Module  # eval mode, parameters frozen (attributions take grads w.r.t. input embeddings)
    tokenizer: PreTrainedTokenizerBase
    device: torch.device  # where inputs go: the input embeddings' device (the first one under device_map)
    dtype: torch.dtype
    load_seconds: float
    stop_token_ids: frozenset[int]
    family: Family = CAUSAL
    extra: dict[str, Any] = field(default_factory=dict)  # facts about the load (cache folder, device map)
    # Decoding over a static cache with a compiled step: "auto" (where CUDA is), "on" or "off" (static_decode.py).
    compile_decode: str = "auto"

    def describe(self) -> dict[str, Any]:
        """Plain msgpack-able facts about the model, for status and models.list."""
        config = self.model.config
        return {
            "name": self.name,
            "source": self.source,
            # A shape-only copy (meta device) has no weights: they live in model replicas elsewhere.
            "device": "replicas" if self.device.type == "meta" else str(self.device),
            "dtype": dtype_name(self.dtype),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "n_layers": _n_layers(config),
            "vocab_size": int(getattr(config, "vocab_size", None) or len(self.tokenizer)),
            "family": self.family,
            "model_type": str(getattr(config, "model_type", "")),
            "stop_token_ids": sorted(self.stop_token_ids),
            "load_seconds": round(self.load_seconds, 3),
            "special_tokens": special_tokens(self.tokenizer),
            "tokenizer_size": len(self.tokenizer),
        }


def _n_layers(config: Any) -> int | None:
    for attribute in ("num_hidden_layers", "n_layer", "num_layers"):
        value = getattr(config, attribute, None)
        if isinstance(value, int):
            return value
    return None
