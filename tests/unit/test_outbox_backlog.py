"""A slow reader loses no final reply: the outbox keeps what a full pipe refuses, in order, and sheds only
non-final events when a peer's backlog passes its bound (PROTOCOL.md §5.2). Real ZeroMQ sockets (inproc)."""

from __future__ import annotations

import time

import pytest
import zmq

from ecco_daemon.server import outbox as outbox_module
from ecco_daemon.server.outbox import Outbox


@pytest.fixture
def sockets():
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.SNDHWM, 4)
    router.bind("inproc://daemon")
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.RCVHWM, 4)
    dealer.setsockopt(zmq.IDENTITY, b"peer")
    dealer.connect("inproc://daemon")
    dealer.send(b"hello")  # the ROUTER learns the peer
    assert router.recv_multipart()[0] == b"peer"
    outbox = Outbox(context, router)
    yield outbox, dealer
    outbox.close()
    dealer.close(0)
    router.close(0)
    context.term()


def _read_all(outbox: Outbox, dealer: zmq.Socket, expected_finals: int) -> list[bytes]:
    received: list[bytes] = []
    deadline = time.monotonic() + 10
    while sum(m.startswith(b"final") for m in received) < expected_finals and time.monotonic() < deadline:
        outbox.forward_pending()  # the loop's turn: retries the backlog
        while dealer.poll(0):
            received.append(dealer.recv())
    return received


def test_a_reader_that_paused_gets_every_final_reply_in_order(sockets):
    outbox, dealer = sockets
    for index in range(200):
        outbox.send(b"peer", [f"token {index}".encode()])
        outbox.send(b"peer", [f"final {index}".encode()], final=True)
    assert outbox.backlog_size(b"peer") > 0  # the pipe was full: the rest waited instead of vanishing
    received = _read_all(outbox, dealer, 200)
    finals = [m for m in received if m.startswith(b"final")]
    assert finals == [f"final {i}".encode() for i in range(200)]
    assert len(received) == 400  # under its bound the backlog sheds nothing
    assert outbox.backlog_size(b"peer") == 0


def test_an_overfull_backlog_sheds_only_non_final_events(sockets, monkeypatch):
    outbox, dealer = sockets
    monkeypatch.setattr(outbox_module, "BACKLOG_BYTES", 2000)
    for index in range(200):
        outbox.send(b"peer", [f"token {index}".encode().ljust(40)])
        outbox.send(b"peer", [f"final {index}".encode()], final=True)
    received = _read_all(outbox, dealer, 200)
    assert [m for m in received if m.startswith(b"final")] == [f"final {i}".encode() for i in range(200)]
    assert sum(m.startswith(b"token") for m in received) < 200


def test_a_peer_that_is_gone_does_not_hold_a_backlog(sockets):
    outbox, _ = sockets
    outbox.send(b"nobody", [b"final"], final=True)
    assert outbox.backlog_size(b"nobody") == 0
