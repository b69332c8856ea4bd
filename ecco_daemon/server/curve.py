"""ZeroMQ CURVE for the daemon: a server keypair kept in the state folder, applied to the ROUTER.

Why: HMAC signing proves who sent a message but hides nothing; beyond loopback the traffic must be
encrypted. The keypair is created once and kept (owner-only), so the public key in users' connection
files stays valid across restarts. Clients use throwaway keypairs: who they are is the HMAC's job.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import zmq

security_log = logging.getLogger("ecco_daemon.security")


@dataclass(frozen=True)
class CurveKeys:
    public_key: str  # Z85, 40 characters
    secret_key: str


def server_keys_file(state_dir: Path) -> Path:
    return Path(state_dir) / "curve" / "server_keys.json"


def read_server_keys(state_dir: Path) -> CurveKeys | None:
    path = server_keys_file(state_dir)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return CurveKeys(public_key=data["public_key"], secret_key=data["secret_key"])


def load_or_create_server_keys(state_dir: Path) -> CurveKeys:
    """The daemon's keypair, generated on first use and written readable only by its owner."""
    if not zmq.has("curve"):
        raise RuntimeError("this libzmq was built without CURVE support")
    existing = read_server_keys(state_dir)
    if existing is not None:
        return existing
    public, secret = zmq.curve_keypair()
    keys = CurveKeys(public_key=public.decode("ascii"), secret_key=secret.decode("ascii"))
    path = server_keys_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".server_keys.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"public_key": keys.public_key, "secret_key": keys.secret_key}, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return keys


def make_curve_server(socket: zmq.Socket, keys: CurveKeys) -> None:
    """Encrypt every connection of this socket; must be called before bind."""
    socket.curve_secretkey = keys.secret_key.encode("ascii")
    socket.curve_publickey = keys.public_key.encode("ascii")
    socket.curve_server = True


def is_loopback(address: str) -> bool:
    if address.startswith(("ipc://", "inproc://")):
        return True
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host in {"127.0.0.1", "localhost", "::1"} or host.startswith("127.")


class BindRefused(SystemExit):
    """Binding beyond loopback without encryption: the daemon does not start."""


def refuse_unsafe_bind(address: str, curve: bool) -> None:
    """Beyond loopback, traffic must be encrypted: without CURVE the daemon refuses to start."""
    if not is_loopback(address) and not curve:
        security_log.error("refused to bind %s without CURVE", address)
        raise BindRefused(f"refusing to bind {address}: binding beyond loopback requires CURVE encryption "
                          f"(serve --curve)")


def client_address(bound: str) -> str:
    """The address clients should dial: a wildcard bind is reached through this host's name."""
    scheme, _, rest = bound.partition("://")
    host, _, port = rest.rpartition(":")
    if host.strip("[]") in {"0.0.0.0", "*", "::"}:
        return f"{scheme}://{socket.getfqdn()}:{port}"
    return bound
