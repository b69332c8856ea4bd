"""A value derived from a model once and kept as long as the model lives.

Why: the architecture inspection (a probe forward) and the eager twin are costly to make and fixed for a
given model; they are made on first use, under one lock, and dropped with the model (weakly keyed).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from torch import nn

T = TypeVar("T")


class PerModel(Generic[T]):
    def __init__(self, make: Callable[[nn.Module], T]) -> None:
        self._make = make
        self._values: weakref.WeakKeyDictionary[nn.Module, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, model: nn.Module) -> T:
        with self._lock:
            value = self._values.get(model)
            if value is None:
                value = self._make(model)
                self._values[model] = value
            return value
