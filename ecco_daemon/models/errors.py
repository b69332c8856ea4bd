"""Errors of model loading, kept apart so callers can map them to protocol error codes."""

from __future__ import annotations


class ModelLoadError(RuntimeError):
    """A model could not be found, fetched, converted or loaded; the message says what to do about it."""


class CacheCorruptError(ModelLoadError):
    """A cached model folder fails its manifest check (partial write, damaged or edited file)."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"model cache {path} is damaged: {reason}")
        self.path = path
        self.reason = reason
