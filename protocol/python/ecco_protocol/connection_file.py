"""Connection files: address, user and key in one owner-only JSON file (jupyter_client's write_connection_file)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class ConnectionInfo:
    address: str
    user: str
    key: str
    # Set when the daemon encrypts with ZeroMQ CURVE: the client must know the server's public key.
    server_public_key: str | None = None
    protocol: str = "ecco"


def write_connection_file(path: Path, info: ConnectionInfo) -> Path:
    """Write atomically, readable only by its owner: the key is a credential."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(info), handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_connection_file(path: Path | str) -> ConnectionInfo:
    """The file's address, user and key; ValueError (saying what is wrong) for a file that is not one."""
    try:
        data = json.loads(Path(path).expanduser().read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"connection file {path} is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"connection file {path} holds {type(data).__name__}, not a JSON object")
    known = {k: data[k] for k in ("address", "user", "key", "server_public_key", "protocol") if k in data}
    missing = {"address", "user", "key"} - known.keys()
    if missing:
        raise ValueError(f"connection file {path} lacks {', '.join(sorted(missing))}")
    return ConnectionInfo(**known)


def default_state_dir() -> Path:
    """The daemon's state folder (keys, users, connection files): one definition that the daemon and clients share."""
    env = os.environ.get("ECCO_DAEMON_HOME")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "ecco-daemon"


def default_connection_file() -> Path:
    env = os.environ.get("ECCO_CONNECTION_FILE")
    return Path(env).expanduser() if env else default_state_dir() / "connection.json"
