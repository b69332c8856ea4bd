"""A client whose security does not match the daemon's fails at once and says why; leaving never hangs.

Real ZeroMQ peers on loopback stand in for the daemon: what is tested is what ZeroMQ does to the client
when the handshake fails (it stops reconnecting, and then holds every send forever), which once hung a
connect past its timeout.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest
import zmq
from ecco_protocol.codec import split_frames

import ecco_client
from ecco_client.aio.client import AsyncClient
from ecco_client.credentials import Credentials

KEY = secrets.token_hex(32)


def router(curve: bool) -> tuple[zmq.Socket[bytes], str, str]:
    """A ROUTER on a free loopback port: with CURVE when asked; returns it, its address and public key."""
    socket = zmq.Context.instance().socket(zmq.ROUTER)
    socket.setsockopt(zmq.LINGER, 0)
    public = ""
    if curve:
        public_bytes, secret = zmq.curve_keypair()
        socket.curve_server = True
        socket.curve_secretkey = secret
        socket.curve_publickey = public_bytes
        public = public_bytes.decode("ascii")
    port = socket.bind_to_random_port("tcp://127.0.0.1")
    return socket, f"tcp://127.0.0.1:{port}", public


@pytest.fixture()
def curve_router() -> Iterator[tuple[str, str]]:
    socket, address, public = router(curve=True)
    yield address, public
    socket.close()


def test_a_plain_client_against_a_curve_daemon_is_told_to_use_its_connection_file(curve_router) -> None:
    address, _ = curve_router
    # The failure races the first ping; each connect must end with the handshake's reason, never hang.
    for _ in range(25):
        with pytest.raises(ecco_client.DaemonUnavailable) as info:
            ecco_client.connect(address, key=KEY, user="alice", timeout=5.0)
        assert "requires CURVE encryption" in str(info.value), str(info.value)
        assert "server_public_key" in str(info.value)


def test_a_wrong_server_key_is_named(curve_router) -> None:
    address, _ = curve_router
    other_key = zmq.curve_keypair()[0].decode("ascii")
    with pytest.raises(ecco_client.DaemonUnavailable) as info:
        asyncio.run(connect_async(Credentials(address, "alice", KEY, other_key)))
    assert "the server_public_key in this connection is not the daemon's" in str(info.value)


def test_a_curve_client_against_a_plain_daemon_is_told_so() -> None:
    socket, address, _ = router(curve=False)
    try:
        server_key = zmq.curve_keypair()[0].decode("ascii")
        with pytest.raises(ecco_client.DaemonUnavailable) as info:
            asyncio.run(connect_async(Credentials(address, "alice", KEY, server_key)))
        assert "does not use CURVE encryption" in str(info.value)
    finally:
        socket.close()


async def connect_async(credentials: Credentials) -> None:
    client = AsyncClient(credentials, timeout=5.0)
    try:
        await client.wait_ready()
    finally:
        await client.close()


def test_a_caller_who_stops_waiting_leaves_at_once_and_the_daemon_is_told_to_cancel() -> None:
    socket, address, _ = router(curve=False)

    async def leave_early() -> str:
        client = AsyncClient(Credentials(address, "alice", KEY, None), timeout=5.0)
        try:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.call("generate", {"prompt": "x"}), 0.5)
        finally:
            await client.close()
        return "left"

    try:
        assert asyncio.run(leave_early()) == "left"
        ops = []
        while socket.poll(2000):
            frames = socket.recv_multipart()
            raw = split_frames(frames[1:])
            ops.append((raw.header()["op"], raw.header()["id"], raw.content()["params"]))
        (first, request_id, _), (second, _, params) = ops
        assert (first, second, params) == ("generate", "cancel", {"target": request_id})
    finally:
        socket.close()
