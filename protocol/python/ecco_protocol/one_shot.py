"""One request, answered synchronously: for tools (the daemon's `status`) that must not depend on a client."""

from __future__ import annotations

from typing import Any

import zmq

from ecco_protocol.codec import encode_message, new_request_header, split_frames
from ecco_protocol.connection_file import ConnectionInfo
from ecco_protocol.signing import SignatureError, Signer


class NoAnswer(Exception):
    """Nothing answered in time, or the answer was an error event (its code and message are kept)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def request_once(info: ConnectionInfo, op: str, params: dict[str, Any] | None = None,
                 timeout_s: float = 5.0) -> dict[str, Any]:
    """Send ``op`` signed with the connection file's key; the result's content, or NoAnswer."""
    signer = Signer(info.key)
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    if info.server_public_key:
        public, secret = zmq.curve_keypair()
        socket.curve_serverkey = info.server_public_key.encode("ascii")
        socket.curve_publickey = public
        socket.curve_secretkey = secret
    try:
        socket.connect(info.address)
        header = new_request_header(op, info.user)
        socket.send_multipart(encode_message(header, {"params": params or {}}, signer))
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        while poller.poll(int(timeout_s * 1000)):
            raw = split_frames(socket.recv_multipart())
            reply = raw.header()
            if reply.get("id") != header["id"] or reply.get("event") not in ("result", "error"):
                continue
            content = raw.content()
            if reply["event"] == "error":
                raise NoAnswer(str(content.get("message", "error")), str(content.get("code", "")))
            try:
                signer.verify(raw.signature, raw.signed_frames)
            except SignatureError as exc:
                raise NoAnswer(f"the answer from {info.address} is not signed with this key: {exc}") from None
            return content
        raise NoAnswer(f"no answer from {info.address} within {timeout_s:g}s")
    finally:
        socket.close()
        context.term()
