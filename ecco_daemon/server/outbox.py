"""Sending events from any thread: ZeroMQ sockets are not thread-safe, so only the loop touches the ROUTER.

Other threads encode and sign their events themselves (keeping that work off the loop) and hand the
frames over an inproc PUSH socket of their own; the loop forwards them to the ROUTER.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import zmq
from ecco_protocol.signing import Buffer

OUTBOX_ADDRESS = "inproc://ecco-outbox"


class Outbox:
    def __init__(self, context: zmq.Context, router: zmq.Socket) -> None:
        self._context = context
        self._router = router
        self._loop_thread = threading.get_ident()
        self._local = threading.local()
        self._sockets: list[zmq.Socket] = []
        self._lock = threading.Lock()
        self.pull = context.socket(zmq.PULL)
        self.pull.bind(OUTBOX_ADDRESS)

    def send(self, identity: bytes, frames: Sequence[Buffer]) -> None:
        if threading.get_ident() == self._loop_thread:
            # Whatever other threads handed over earlier goes first, so one request's events stay in order.
            self.forward_pending()
            self._send_to_router([identity, *frames])
            return
        push = getattr(self._local, "push", None)
        if push is None:
            push = self._context.socket(zmq.PUSH)
            push.connect(OUTBOX_ADDRESS)
            self._local.push = push
            with self._lock:
                self._sockets.append(push)
        push.send_multipart([identity, *frames], copy=False)

    def forward_pending(self) -> int:
        """Called by the loop when the PULL socket is readable; forwards everything waiting."""
        count = 0
        while True:
            try:
                frames = self.pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return count
            self._send_to_router(frames)
            count += 1

    def _send_to_router(self, frames: Sequence[Buffer]) -> None:
        try:
            self._router.send_multipart(frames, copy=False)
        except zmq.ZMQError:
            # The peer is gone (ROUTER_MANDATORY) or the socket is closing: the event has nobody to reach.
            pass

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                sock.close(linger=0)
            self._sockets.clear()
        self.pull.close(linger=0)
