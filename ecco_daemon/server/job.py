"""One request's life on the daemon: who asked, how to reach them, its events, and its cancel flag."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from ecco_protocol.codec import encode_message, new_event_header
from ecco_protocol.signing import Signer

from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.pacing import ProgressPacer

if TYPE_CHECKING:
    from ecco_daemon.server.outbox import Outbox
    from ecco_daemon.server.registry import Operation
    from ecco_daemon.server.reply_journal import ReplyJournal
    from ecco_daemon.server.users import User

TERMINAL_EVENTS = frozenset({"result", "error"})


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


class Cancelled(Exception):
    """Raised inside model work when the job's cancel flag is seen."""


@dataclass
class Job:
    request_id: str
    identity: bytes
    user: User
    operation: Operation
    params: Any
    outbox: Outbox
    signer: Signer | None
    # Jobs with equal batch keys may run together in one forward pass (same model, same kind of work).
    batch_key: tuple[Any, ...] | None = None
    # The loaded model this job runs on (set by ``prepare``); an executor with model replicas routes by it.
    model: str | None = None
    # Work units (tokens x steps) used by the scheduler's per-user limits.
    cost: int = 1
    created: float = field(default_factory=time.monotonic)
    state: JobState = JobState.QUEUED
    cancel_event: threading.Event = field(default_factory=threading.Event)
    cancel_code: str = "CANCELLED"
    cancel_reason: str | None = None  # said in the error reply; None: the code's usual words
    # Where the final reply is also kept, so a reader that fell behind or reconnected can fetch it.
    journal: ReplyJournal | None = None
    _seq: itertools.count = field(default_factory=itertools.count)
    _pacer: ProgressPacer = field(default_factory=ProgressPacer)
    _finished: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def key(self) -> tuple[str, str]:
        return (self.user.name, self.request_id)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    def cancel(self, code: str = "CANCELLED", reason: str | None = None) -> None:
        self.cancel_code = code
        self.cancel_reason = reason
        self.cancel_event.set()

    def emit(self, event: str, content: dict[str, Any] | None = None) -> bool:
        """Send one event; after a terminal event nothing more is sent, so a request is answered exactly once."""
        with self._lock:
            if self._finished:
                return False
            seq = next(self._seq)
            # Encoded before the job counts as answered: content that cannot be encoded raises here, and the
            # caller can still be sent an error.
            frames = encode_message(new_event_header(self.request_id, event, seq), content or {}, self.signer)
            final = event in TERMINAL_EVENTS
            if final:
                self._finished = True
                if self.journal is not None:
                    nbytes = sum(memoryview(frame).nbytes for frame in frames)
                    self.journal.record(self.user.name, self.request_id, event, content or {}, nbytes)
            # Sent under the lock: events from different threads (loop, worker) leave in seq order.
            self.outbox.send(self.identity, frames, final=final)
        return True

    def progress(self, stage: str, done: int | None = None, total: int | None = None, **extra: Any) -> None:
        """A progress event (protocol §5): with counts, also ``elapsed_s`` and ``eta_s``; paced (pacing.py)."""
        content = self._pacer.stamp(stage, done, total, extra)
        if content is not None:
            self.emit("progress", content)

    def fail(self, error: OperationError) -> bool:
        return self.emit("error", error.to_content())

    @property
    def finished(self) -> bool:
        return self._finished
