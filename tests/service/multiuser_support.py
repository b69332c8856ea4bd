"""Helpers for the multi-user and security tiers: the user CLI as a subprocess, and a raw protocol client
that keeps every event it receives (so lost, duplicated or misrouted replies show up)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from ecco_protocol.codec import encode_message, new_request_header, split_frames
from ecco_protocol.connection_file import ConnectionInfo, read_connection_file
from ecco_protocol.signing import Signer

TERMINAL = ("result", "error")


def user_cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``ecco-daemon --state-dir STATE user ...`` as a real subprocess."""
    return subprocess.run([sys.executable, "-m", "ecco_daemon.cli", "--state-dir", str(state_dir), "user", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def add_user(state_dir: Path, name: str, role: str = "user") -> Path:
    done = user_cli(state_dir, "add", name, "--role", role)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


@dataclass
class RawClient:
    """A DEALER speaking the protocol directly: several requests in flight, every event recorded."""

    info: ConnectionInfo
    address: str | None = None
    events: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))
    strays: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.signer = Signer(self.info.key)
        self.sent: dict[str, tuple[str, dict[str, Any]]] = {}
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if self.info.server_public_key:
            public, secret = zmq.curve_keypair()
            self.socket.curve_serverkey = self.info.server_public_key.encode("ascii")
            self.socket.curve_publickey, self.socket.curve_secretkey = public, secret
        self.socket.connect(self.address or self.info.address)

    @classmethod
    def from_file(cls, path: Path, address: str | None = None) -> RawClient:
        return cls(read_connection_file(path), address)

    def send(self, op: str, params: dict[str, Any] | None = None) -> str:
        header = new_request_header(op, self.info.user)
        self.sent[header["id"]] = (op, params or {})
        self.socket.send_multipart(encode_message(header, {"params": params or {}}, self.signer))
        return header["id"]

    def receive(self, timeout_s: float) -> tuple[dict[str, Any], dict[str, Any]] | None:
        if not self.socket.poll(int(timeout_s * 1000)):
            return None
        raw = split_frames(self.socket.recv_multipart())
        self.signer.verify(raw.signature, raw.signed_frames)
        header, content = raw.header(), raw.content()
        if header.get("id") in self.sent:
            self.events[header["id"]].append((header, content))
        else:
            self.strays.append(header)
        return header, content

    def finished(self, request_id: str) -> bool:
        return any(h["event"] in TERMINAL for h, _ in self.events.get(request_id, []))

    def terminal(self, request_id: str) -> tuple[str, dict[str, Any]]:
        ends = [(h["event"], c) for h, c in self.events[request_id] if h["event"] in TERMINAL]
        assert len(ends) == 1, f"{request_id}: {len(ends)} terminal events"
        return ends[0]

    def call(self, op: str, params: dict[str, Any] | None = None, timeout_s: float = 30.0) -> tuple[str, dict]:
        request_id = self.send(op, params)
        deadline = time.monotonic() + timeout_s
        while not self.finished(request_id):
            assert time.monotonic() < deadline, f"no answer to {op} within {timeout_s}s"
            self.receive(deadline - time.monotonic())
        return self.terminal(request_id)

    def close(self) -> None:
        self.socket.close(linger=0)
