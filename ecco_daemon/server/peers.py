"""When each connected client was last heard from, so the jobs of a client that is gone can be cancelled.

A client with requests in flight sends a heartbeat (a ``ping``) at least every ``HEARTBEAT_S`` seconds; a
peer silent for longer than the grace period is taken to be gone (PROTOCOL.md §5.3).
"""

from __future__ import annotations

import threading
import time

HEARTBEAT_S = 10.0
DEFAULT_GRACE_S = 60.0


class PeerClock:
    def __init__(self) -> None:
        self._seen: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def seen(self, identity: bytes) -> None:
        with self._lock:
            self._seen[identity] = time.monotonic()

    def silent_for(self, identity: bytes) -> float:
        with self._lock:
            last = self._seen.get(identity)
        return 0.0 if last is None else time.monotonic() - last

    def forget_silent(self, older_than_s: float) -> None:
        """Drop peers not heard from for a long time, so the map stays as small as the live connections."""
        cutoff = time.monotonic() - older_than_s
        with self._lock:
            self._seen = {identity: at for identity, at in self._seen.items() if at >= cutoff}
