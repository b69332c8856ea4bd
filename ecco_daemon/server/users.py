"""Users, roles and keys: the daemon's record of who may send it messages.

The file is the source of truth: ``ecco-daemon user add/remove`` edits it while a daemon runs, and the
daemon's store notices the change (a cheap stat per lookup), so a new user can connect at once and a
removed one is refused at once.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from ecco_protocol.connection_file import ConnectionInfo, write_connection_file

ROLES = ("admin", "user")
ADMIN = "admin"


@dataclass(frozen=True)
class User:
    name: str
    key: str
    role: str = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def check_name(name: str) -> None:
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError("a user name is 1 to 64 letters, digits, '-', '_' or '.'")
    if name.startswith("."):
        raise ValueError("a user name may not start with '.'")


class UserStore:
    """A JSON file of users, owner-readable only, rewritten atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._stamp: tuple[int, int, int] | None = None
        self.reload()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def reload(self) -> None:
        with self._lock:
            self._reload_locked()

    def _reload_locked(self) -> None:
        stamp = self._file_stamp()
        if stamp is None:
            self._users = {}
        else:
            data = json.loads(self.path.read_text())
            self._users = {name: User(name=name, **entry) for name, entry in data.get("users", {}).items()}
        self._stamp = stamp

    def _refresh_locked(self) -> None:
        """Re-read the file when another process (the CLI) changed it."""
        if self._file_stamp() != self._stamp:
            self._reload_locked()

    def get(self, name: str) -> User | None:
        with self._lock:
            self._refresh_locked()
            return self._users.get(name)

    def names(self) -> list[str]:
        with self._lock:
            self._refresh_locked()
            return sorted(self._users)

    def all(self) -> list[User]:
        with self._lock:
            self._refresh_locked()
            return [self._users[name] for name in sorted(self._users)]

    def add(self, name: str, role: str = "user") -> User:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        check_name(name)
        with self._lock:
            self._refresh_locked()
            if name in self._users:
                raise ValueError(f"user {name!r} exists already")
            user = User(name=name, key=secrets.token_hex(32), role=role)
            self._users[name] = user
            self._save()
        return user

    def remove(self, name: str) -> bool:
        with self._lock:
            self._refresh_locked()
            if self._users.pop(name, None) is None:
                return False
            self._save()
            return True

    def ensure_admin(self, name: str = ADMIN) -> User:
        existing = self.get(name)
        return existing if existing is not None else self.add(name, role="admin")

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"users": {u.name: {k: v for k, v in asdict(u).items() if k != "name"} for u in self._users.values()}}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".users.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(payload, handle, indent=2)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = self._file_stamp()


def connection_file_for(state_dir: Path, user: str) -> Path:
    """The admin's file is the daemon's default connection file; every other user's is named after them."""
    state_dir = Path(state_dir)
    return state_dir / "connection.json" if user == ADMIN else state_dir / "connections" / f"{user}.json"


def write_user_connection_file(state_dir: Path, user: User, address: str,
                               server_public_key: str | None) -> Path:
    path = connection_file_for(state_dir, user.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    return write_connection_file(path, ConnectionInfo(address=address, user=user.name, key=user.key,
                                                      server_public_key=server_public_key))
