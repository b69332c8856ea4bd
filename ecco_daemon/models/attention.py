"""A model whose forward returns attention weights, for the requests that ask for them.

Why a twin: most models load with SDPA (or flash) attention, which never materializes the weights, so
``output_attentions`` gives nothing. Switching the shared model to eager attention, even for one
forward, would change it under every other request. The twin is a second module tree over the same
parameters and buffers (no weight is copied) with its own config set to eager attention; the shared
model is never touched. It is made on the first request that asks, and lives as long as the model.
"""

from __future__ import annotations

import copy

from torch import nn

from ecco_daemon.models.per_model import PerModel

EAGER = "eager"

class NoEagerAttention(Exception):
    """The model cannot run eager attention (or cannot be twinned); the message says what to do."""


def returns_attention(model: nn.Module) -> bool:
    return getattr(getattr(model, "config", None), "_attn_implementation", None) == EAGER


def attention_model(model: nn.Module) -> nn.Module:
    """``model`` itself when it runs eager attention, else its eager twin (made once, then cached)."""
    return model if returns_attention(model) else _twin_of(model)


def _eager_twin(model: nn.Module) -> nn.Module:
    shared = {id(t): t for t in (*model.parameters(), *model.buffers())}  # memo: these are not copied
    try:
        twin = copy.deepcopy(model, shared)
        twin.set_attn_implementation(EAGER)  # the twin's own (copied) config: the model's stays as it was
    except Exception as exc:  # no eager path, hooks that refuse to copy, not a transformers model
        raise NoEagerAttention(
            f"cannot run {type(model).__name__} with eager attention ({type(exc).__name__}: {exc}); "
            "load it with attn_implementation='eager' to see attention weights"
        ) from exc
    return twin.eval()


_twin_of: PerModel[nn.Module] = PerModel(_eager_twin)
