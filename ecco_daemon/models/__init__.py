"""Model loading: the embedded default, local folders, GGUF files and hub ids, through a checked cache."""

from __future__ import annotations

from .embedded import DEFAULT_MODEL, EMBEDDED
from .errors import CacheCorruptError, ModelLoadError
from .loaded import LoadedModel
from .loader import load_model, pull_model

__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDED",
    "CacheCorruptError",
    "LoadedModel",
    "ModelLoadError",
    "load_model",
    "pull_model",
]
