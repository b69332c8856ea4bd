"""Attention recomputed for runs kept without it, remembered for the next view of the same run.

Why: the panel and notebooks ask one layer at a time (a layer picker, a loop over layers), and each ask of
a run kept without attention costs one recording forward (110 to 140 ms on SmolLM2). The forward gives
every layer at once, so the later asks can be answered from it. Bounded in bytes, least recently used
first out; a run too large for the bound is not kept. Keyed by the run object (a run read back from disk
is a new object, so it cannot be answered with another run's weights).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

Attention = dict[str, np.ndarray]

DEFAULT_MAX_BYTES = 256 * 2**20


class RecomputedAttention:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[int, tuple[weakref.ref[object], Attention, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.RLock()  # a run may die, and be forgotten, while the lock is held

    def get(self, run: object, compute: Callable[[], Attention]) -> Attention:
        """The run's attention, computed by ``compute`` unless remembered."""
        key = id(run)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0]() is run:
                self._entries.move_to_end(key)
                return entry[1]
        attention = compute()
        size = sum(array.nbytes for array in attention.values())
        if size <= self.max_bytes:
            with self._lock:
                self._drop(key)
                self._entries[key] = (weakref.ref(run, lambda _: self._forget(key)), attention, size)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    self._drop(next(iter(self._entries)))
        return attention

    @property
    def nbytes(self) -> int:
        return self._bytes

    def _forget(self, key: int) -> None:
        with self._lock:
            self._drop(key)

    def _drop(self, key: int) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[2]
