"""HMAC-SHA256 signatures over the frames, and a guard against replayed messages.

Follows jupyter_client's Session: the digest covers every frame after the signature, in order,
and is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections.abc import Iterable

from ecco_protocol.errors import ErrorCode

Buffer = bytes | bytearray | memoryview


class SignatureError(Exception):
    """A security failure (never folded into bad input): unsigned, badly signed, stale or replayed."""

    code = ErrorCode.UNAUTHORIZED


class Signer:
    """Signs and verifies with one user's key."""

    def __init__(self, key: bytes | str) -> None:
        if isinstance(key, str):
            key = key.encode("ascii")
        if not key:
            raise ValueError("an empty key cannot sign")
        self._key = key

    def sign(self, frames: Iterable[Buffer]) -> bytes:
        """Each frame enters the MAC behind its length (8 bytes, big-endian), so the frame boundaries are signed
        too: ``[AB, CD]`` and ``[A, BCD]`` never share a signature."""
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for frame in frames:
            view = memoryview(frame)
            mac.update(view.nbytes.to_bytes(8, "big"))
            mac.update(view)
        return mac.hexdigest().encode("ascii")

    def verify(self, signature: Buffer, frames: Iterable[Buffer]) -> None:
        if not signature:
            raise SignatureError("message is not signed")
        if not hmac.compare_digest(bytes(signature), self.sign(frames)):
            raise SignatureError("bad signature")


class ReplayGuard:
    """Refuses a message seen before, or one whose timestamp is outside the window.

    The timestamp bounds how long digests must be remembered, so memory stays bounded.
    """

    def __init__(self, window_seconds: float = 300.0) -> None:
        self.window_seconds = window_seconds
        self._seen: dict[bytes, float] = {}
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def check(self, signature: Buffer, timestamp: float, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if not math.isfinite(timestamp):
            # NaN compares false with everything: it would pass the window check and be forgotten at once.
            raise SignatureError("message timestamp must be a finite number")
        if abs(now - timestamp) > self.window_seconds:
            raise SignatureError(
                f"message timestamp is {now - timestamp:+.0f}s from the daemon's clock "
                f"(allowed: ±{self.window_seconds:.0f}s)"
            )
        digest = bytes(signature)
        with self._lock:
            if now >= self._next_prune:
                self._seen = {d: t for d, t in self._seen.items() if t > now}
                self._next_prune = now + self.window_seconds / 10
            if digest in self._seen:
                raise SignatureError("replayed message")
            self._seen[digest] = timestamp + 2 * self.window_seconds
