"""Sending events from any thread: ZeroMQ sockets are not thread-safe, so only the loop touches the ROUTER.

Other threads encode and sign their events themselves (keeping that work off the loop) and hand the
frames over one inproc PUSH socket, taken in turn under a lock; the loop forwards them to the ROUTER.
One pipe, not one per thread: a job's events may come from several threads (a dispatcher announces queue
positions, a worker then streams tokens), and PULL would interleave separate pipes out of order.

A slow reader never loses a final reply (PROTOCOL.md §5.2): the ROUTER is mandatory (a full pipe is an
error, not a silent drop), and what a peer cannot take yet waits in that peer's backlog, in order, and is
retried on every turn of the loop. A backlog over its byte bound sheds the peer's oldest non-final events
(queue positions, progress, tokens: the final result repeats what they said); final replies are kept.
A peer that is gone (no route) loses its backlog; its final replies stay in the reply journal.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

import zmq
from ecco_protocol.signing import Buffer

OUTBOX_ADDRESS = "inproc://ecco-outbox"
BACKLOG_BYTES = 256 * 1024 * 1024  # per peer


class _Backlog:
    def __init__(self) -> None:
        self.messages: deque[tuple[list[Buffer], bool]] = deque()  # (frames with identity, final?)
        self.nbytes = 0

    def add(self, frames: list[Buffer], final: bool) -> None:
        self.messages.append((frames, final))
        self.nbytes += _size(frames)
        if self.nbytes > BACKLOG_BYTES:
            kept: deque[tuple[list[Buffer], bool]] = deque()
            for message in self.messages:
                if message[1] or self.nbytes <= BACKLOG_BYTES:
                    kept.append(message)
                else:
                    self.nbytes -= _size(message[0])
            self.messages = kept


def _size(frames: Sequence[Buffer]) -> int:
    return sum(memoryview(frame).nbytes for frame in frames)


class Outbox:
    def __init__(self, context: zmq.Context, router: zmq.Socket) -> None:
        self._context = context
        self._router = router
        self._loop_thread = threading.get_ident()
        self._lock = threading.Lock()  # the PUSH socket is used by one thread at a time (a full memory barrier)
        self.pull = context.socket(zmq.PULL)
        self.pull.bind(OUTBOX_ADDRESS)
        self._backlogs: dict[bytes, _Backlog] = {}
        # A full pipe to a peer raises instead of dropping the message silently.
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._push = context.socket(zmq.PUSH)
        # Shared by every thread: no high-water mark, so a sender never blocks (holding a job's lock) while
        # the loop, which drains this pipe on every turn, waits for that same lock.
        self._push.setsockopt(zmq.SNDHWM, 0)
        self._push.connect(OUTBOX_ADDRESS)

    def send(self, identity: bytes, frames: Sequence[Buffer], final: bool = False) -> None:
        if threading.get_ident() == self._loop_thread:
            # Whatever other threads handed over earlier goes first, so one request's events stay in order.
            self.forward_pending()
            self._send_to_router([identity, *frames], final)
            return
        with self._lock:
            if not self._push.closed:  # after close, a late event has nobody to reach
                self._push.send_multipart([b"F" if final else b"-", identity, *frames], copy=False)

    def forward_pending(self) -> int:
        """Called by the loop: first retry the backlogs, then forward everything other threads handed over."""
        self.retry_backlogs()
        count = 0
        while True:
            try:
                frames = self.pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return count
            self._send_to_router(frames[1:], bytes(frames[0].buffer) == b"F")
            count += 1

    def retry_backlogs(self) -> None:
        for identity in list(self._backlogs):
            backlog = self._backlogs[identity]
            while backlog.messages:
                frames, final = backlog.messages[0]
                outcome = self._try_send(frames)
                if outcome == "full":
                    break
                backlog.messages.popleft()
                backlog.nbytes -= _size(frames)
                if outcome == "gone":
                    backlog.messages.clear()
            if not backlog.messages:
                del self._backlogs[identity]

    def backlog_size(self, identity: bytes) -> int:
        backlog = self._backlogs.get(identity)
        return len(backlog.messages) if backlog is not None else 0

    def _send_to_router(self, frames: Sequence[Buffer], final: bool = False) -> None:
        identity = bytes(memoryview(frames[0]))
        backlog = self._backlogs.get(identity)
        if backlog is None and self._try_send(frames) != "full":
            return
        if backlog is None:
            backlog = self._backlogs[identity] = _Backlog()
        backlog.add(list(frames), final)

    def _try_send(self, frames: Sequence[Buffer]) -> str:
        try:
            self._router.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return "full"
        except zmq.ZMQError:
            # No route to the peer (it is gone) or the socket is closing: nobody to reach now.
            return "gone"
        return "sent"

    def close(self) -> None:
        with self._lock:
            self._push.close(linger=0)
        self.pull.close(linger=0)
