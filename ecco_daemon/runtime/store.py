"""Per-user results kept for later views, with a time-to-live and a memory cap.

Later views (layer predictions at another position, NMF with another k) read a stored run instead
of running the model again. Users only ever see their own entries: another user's id is NOT_FOUND.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from ecco_protocol.errors import ErrorCode

from ecco_daemon.server.errors import OperationError


@dataclass
class StoredResult:
    result_id: str
    user: str
    kind: str
    value: Any
    nbytes: int
    expires: float


class ResultStore:
    def __init__(self, ttl_seconds: float, max_bytes: int, remember_evicted: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str], StoredResult] = OrderedDict()
        self._evicted: set[tuple[str, str]] = set()
        self._evicted_order: deque[tuple[str, str]] = deque(maxlen=remember_evicted)
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, user: str, kind: str, value: Any, nbytes: int) -> str:
        if nbytes > self.max_bytes:
            raise OperationError(
                ErrorCode.TOO_LARGE,
                f"this result needs {nbytes / 2**20:.0f} MiB, more than the store's cap of "
                f"{self.max_bytes / 2**20:.0f} MiB",
            )
        result_id = uuid.uuid4().hex
        with self._lock:
            self._expire(time.monotonic())
            while self._bytes + nbytes > self.max_bytes and self._entries:
                self._evict(next(iter(self._entries)))
            self._entries[(user, result_id)] = StoredResult(
                result_id, user, kind, value, nbytes, time.monotonic() + self.ttl_seconds
            )
            self._bytes += nbytes
        return result_id

    def get(self, user: str, result_id: str, kind: str | None = None) -> StoredResult:
        key = (user, result_id)
        with self._lock:
            self._expire(time.monotonic())
            entry = self._entries.get(key)
            if entry is None:
                if key in self._evicted:
                    raise OperationError(
                        ErrorCode.RESULT_EVICTED,
                        f"result {result_id} was evicted (time-to-live or memory cap); run the analysis again",
                    )
                raise OperationError(ErrorCode.NOT_FOUND, f"no result {result_id} for this user")
            if kind is not None and entry.kind != kind:
                raise OperationError(ErrorCode.BAD_REQUEST, f"result {result_id} is a {entry.kind}, not a {kind}")
            self._entries.move_to_end(key)
            entry.expires = time.monotonic() + self.ttl_seconds
            return entry

    def release(self, user: str, result_id: str) -> bool:
        with self._lock:
            entry = self._entries.pop((user, result_id), None)
            if entry is not None:
                self._bytes -= entry.nbytes
            return entry is not None

    def usage(self, user: str | None = None) -> dict[str, int]:
        with self._lock:
            entries = [e for e in self._entries.values() if user is None or e.user == user]
            return {"results": len(entries), "bytes": sum(e.nbytes for e in entries)}

    def _expire(self, now: float) -> None:
        for key in [k for k, e in self._entries.items() if e.expires <= now]:
            self._evict(key)

    def _evict(self, key: tuple[str, str]) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.nbytes
        if len(self._evicted_order) == self._evicted_order.maxlen:
            self._evicted.discard(self._evicted_order[0])
        self._evicted_order.append(key)
        self._evicted.add(key)
