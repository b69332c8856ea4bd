"""Deciding which address, user and key a connection uses, from arguments, a connection file or the default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ecco_protocol.connection_file import default_connection_file, read_connection_file

from ecco_client.exceptions import NoConnectionFile, SetupError


@dataclass(frozen=True)
class Credentials:
    address: str
    user: str
    key: str
    server_public_key: str | None = None


def resolve_credentials(address: str | None, key: str | None, user: str | None,
                        connection_file: str | Path | None) -> Credentials:
    """Explicit arguments win; otherwise the connection file (given, $ECCO_CONNECTION_FILE, or the daemon's default)."""
    info = None
    path = Path(connection_file).expanduser() if connection_file else None
    if path is None and key is None:
        path = default_connection_file()
    if path is not None:
        if not path.exists():
            raise NoConnectionFile(f"no connection file at {path}: start a daemon (`ecco-daemon serve`)",
                                   ("connection_file",))
        try:
            info = read_connection_file(path)
        except (OSError, ValueError) as exc:
            raise SetupError(f"cannot read the connection file: {exc}", ("connection_file",)) from None
    resolved_address = address or (info.address if info else None) or "tcp://127.0.0.1:5555"
    resolved_key = key or (info.key if info else None)
    if not resolved_key:
        raise SetupError("no key to sign messages with", ("key", "connection_file"))
    return Credentials(
        address=resolved_address,
        user=user or (info.user if info else None) or "admin",
        key=resolved_key,
        server_public_key=info.server_public_key if info else None,
    )
