"""Users, roles and keys: the daemon's record of who may send it messages."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

ROLES = ("admin", "user")


@dataclass(frozen=True)
class User:
    name: str
    key: str
    role: str = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class UserStore:
    """A JSON file of users, owner-readable only, rewritten atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self.reload()

    def reload(self) -> None:
        with self._lock:
            if self.path.exists():
                data = json.loads(self.path.read_text())
                self._users = {name: User(name=name, **entry) for name, entry in data.get("users", {}).items()}
            else:
                self._users = {}

    def get(self, name: str) -> User | None:
        with self._lock:
            return self._users.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._users)

    def add(self, name: str, role: str = "user") -> User:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError("a user name is letters, digits, '-', '_' or '.'")
        with self._lock:
            if name in self._users:
                raise ValueError(f"user {name!r} exists already")
            user = User(name=name, key=secrets.token_hex(32), role=role)
            self._users[name] = user
            self._save()
        return user

    def ensure_admin(self, name: str = "admin") -> User:
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
