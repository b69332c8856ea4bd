"""Final replies kept for a while, by user and request id, so that none is lost to a slow or lost reader.

A client that fell behind or reconnected asks for them with ``requests.reply`` (PROTOCOL.md §5.2). Bounded
by age and total bytes; the oldest go first. Users only ever see their own.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

DEFAULT_TTL_S = 120.0
DEFAULT_MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class FinalReply:
    event: str  # "result" | "error"
    content: dict[str, Any]
    nbytes: int
    at: float


class ReplyJournal:
    def __init__(self, ttl_s: float = DEFAULT_TTL_S, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._replies: OrderedDict[tuple[str, str], FinalReply] = OrderedDict()  # oldest first
        self._bytes = 0
        self._lock = threading.Lock()

    def record(self, user: str, request_id: str, event: str, content: dict[str, Any], nbytes: int) -> None:
        if nbytes > self.max_bytes:
            return  # larger than the whole journal: the live reply is its only copy
        key = (user, request_id)
        with self._lock:
            old = self._replies.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._replies[key] = FinalReply(event, content, nbytes, time.monotonic())
            self._bytes += nbytes
            self._trim(time.monotonic())

    def get(self, user: str, request_id: str) -> FinalReply | None:
        with self._lock:
            self._trim(time.monotonic())
            return self._replies.get((user, request_id))

    def __len__(self) -> int:
        with self._lock:
            return len(self._replies)

    def usage(self) -> dict[str, int]:
        with self._lock:
            return {"replies": len(self._replies), "bytes": self._bytes}

    def _trim(self, now: float) -> None:
        while self._replies:
            key, oldest = next(iter(self._replies.items()))
            if self._bytes <= self.max_bytes and now - oldest.at <= self.ttl_s:
                return
            del self._replies[key]
            self._bytes -= oldest.nbytes
