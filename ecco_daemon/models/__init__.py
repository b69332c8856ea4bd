"""Model loading: the embedded default, local folders, GGUF files and hub ids, through a checked cache.

The names below import lazily, so that ``ecco_daemon.models.cache`` or ``.embedded`` can be used (by the
CLI, by tests) without importing torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ecco_daemon.models.embedded import DEFAULT_MODEL, EMBEDDED
    from ecco_daemon.models.errors import CacheCorruptError, ModelLoadError
    from ecco_daemon.models.loaded import LoadedModel
    from ecco_daemon.models.loader import load_model, pull_model

_EXPORTS = {
    "DEFAULT_MODEL": "embedded",
    "EMBEDDED": "embedded",
    "CacheCorruptError": "errors",
    "ModelLoadError": "errors",
    "LoadedModel": "loaded",
    "load_model": "loader",
    "pull_model": "loader",
}

__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDED",
    "CacheCorruptError",
    "LoadedModel",
    "ModelLoadError",
    "load_model",
    "pull_model",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
