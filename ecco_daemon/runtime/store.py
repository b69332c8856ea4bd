"""Per-user results kept for later views, with a time-to-live and a size cap, on disk across restarts.

Later views (layer predictions at another position, NMF with another k) read a stored run instead of
running the model again. Users only ever see their own entries: another user's id is NOT_FOUND.

Why this shape:
- Every lookup is constant time: entries are indexed per user, and since every access renews an entry's
  time-to-live, least recently used is also soonest to expire, so one ordered map serves both expiry and
  eviction. No operation scans other users' entries.
- With a folder, the index lives in SQLite (WAL) and each value in a file of its own, written to a temporary
  name, synced and renamed before its index row is committed. A kill -9 leaves at worst a stray file,
  which the next start deletes; never an index row without its value.
- Expired and evicted ids are remembered (bounded) so they answer their own codes, not NOT_FOUND.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import sqlite3
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecco_protocol.errors import ErrorCode

from ecco_daemon.server.errors import OperationError

log = logging.getLogger(__name__)

EXPIRED, EVICTED = "expired", "evicted"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    user TEXT NOT NULL, result_id TEXT NOT NULL, kind TEXT NOT NULL, nbytes INTEGER NOT NULL,
    expires REAL NOT NULL, file TEXT NOT NULL, PRIMARY KEY (user, result_id));
CREATE TABLE IF NOT EXISTS gone (
    user TEXT NOT NULL, result_id TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (user, result_id));
"""


@dataclass
class StoredResult:
    result_id: str
    user: str
    kind: str
    value: Any
    nbytes: int
    expires: float  # wall-clock seconds (time.time()), so it means the same after a restart


@dataclass
class _Entry:
    kind: str
    nbytes: int
    expires: float
    value: Any = None  # None when only on disk (after a restart)
    file: str | None = None
    saved_expires: float = 0.0  # the expiry last written to the index (renewals are written in steps)


def new_result_id() -> str:
    return uuid.uuid4().hex


def check_size(nbytes: int, max_bytes: int) -> None:
    """A result larger than the whole store is refused (TOO_LARGE) rather than evicting everything."""
    if nbytes > max_bytes:
        raise OperationError(
            ErrorCode.TOO_LARGE,
            f"this result needs {nbytes / 2**20:.0f} MiB, more than the store's cap of {max_bytes / 2**20:.0f} MiB "
            "(ecco-daemon serve --result-store-mb)",
            {"limit": max_bytes, "flag": "--result-store-mb"},
        )


class ResultStore:
    def __init__(self, ttl_seconds: float, max_bytes: int, directory: Path | None = None,
                 remember_gone: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        # How far a renewed expiry may run ahead of the one on disk: a twentieth of the TTL, at most a minute.
        self._renewal_step = min(60.0, ttl_seconds / 20)
        self.max_bytes = max_bytes
        self.remember_gone = remember_gone
        self._order: OrderedDict[tuple[str, str], _Entry] = OrderedDict()  # least recently used first
        self._by_user: dict[str, dict[str, _Entry]] = {}
        self._user_bytes: dict[str, int] = {}
        self._gone: OrderedDict[tuple[str, str], str] = OrderedDict()  # (user, id) -> EXPIRED | EVICTED
        self._bytes = 0
        self._lock = threading.Lock()
        self._directory = Path(directory) if directory is not None else None
        self._db: sqlite3.Connection | None = None
        if self._directory is not None:
            self._open(self._directory)

    # ------------------------------------------------------------------------------------------ public

    def put(self, user: str, kind: str, value: Any, nbytes: int, result_id: str | None = None) -> str:
        """Keep ``value`` for ``user``; ``result_id`` is given when a model replica already named the result."""
        check_size(nbytes, self.max_bytes)
        result_id = result_id or new_result_id()
        expires = time.time() + self.ttl_seconds
        entry = _Entry(kind, nbytes, expires, value, saved_expires=expires)
        if self._directory is not None:
            entry.file = self._write_value(result_id, value)  # outside the lock: other users go on
        with self._lock:
            self._expire(time.time())
            while self._bytes + nbytes > self.max_bytes and self._order:
                self._drop(next(iter(self._order)), EVICTED)
            self._add((user, result_id), entry)
            self._sql("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?)",
                      (user, result_id, kind, nbytes, entry.expires, entry.file or ""))
        return result_id

    def get(self, user: str, result_id: str, kind: str | None = None, load: bool = True) -> StoredResult:
        """The entry, its time-to-live renewed; ``load=False`` leaves a value that is only on disk unread
        (``value`` None), for checks on the socket loop."""
        key = (user, result_id)
        with self._lock:
            now = time.time()
            self._expire(now)
            entry = self._by_user.get(user, {}).get(result_id)
            if entry is None:
                raise self._missing(key)
            if kind is not None and entry.kind != kind:
                raise OperationError(ErrorCode.BAD_REQUEST, f"result {result_id} is a {entry.kind}, not a {kind}")
            self._order.move_to_end(key)
            entry.expires = now + self.ttl_seconds
            if entry.expires - entry.saved_expires > self._renewal_step:
                # A synced write per view would cost milliseconds (and on the socket loop, every user's);
                # the index lags by at most one step, so after a crash an entry expires at most that early.
                entry.saved_expires = entry.expires
                self._sql("UPDATE results SET expires = ? WHERE user = ? AND result_id = ?", (entry.expires, *key))
            value, file = entry.value, entry.file
        if load and value is None and file is not None:
            value = self._read_value(file)  # outside the lock
            with self._lock:
                entry.value = value
        return StoredResult(result_id, user, entry.kind, value, entry.nbytes, entry.expires)

    def release(self, user: str, result_id: str) -> bool:
        with self._lock:
            if result_id not in self._by_user.get(user, {}):
                return False
            self._drop((user, result_id), None)
            return True

    def usage(self, user: str | None = None) -> dict[str, int]:
        with self._lock:
            if user is None:
                return {"results": len(self._order), "bytes": self._bytes}
            return {"results": len(self._by_user.get(user, {})), "bytes": self._user_bytes.get(user, 0)}

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --------------------------------------------------------------------------------------- internals

    def _missing(self, key: tuple[str, str]) -> OperationError:
        reason = self._gone.get(key)
        if reason == EXPIRED:
            return OperationError(ErrorCode.RESULT_EXPIRED, f"result {key[1]} expired (unused for "
                                                            f"{self.ttl_seconds:g}s); run the analysis again")
        if reason == EVICTED:
            return OperationError(ErrorCode.RESULT_EVICTED, f"result {key[1]} was evicted to keep the store "
                                                            "under its size cap; run the analysis again")
        return OperationError(ErrorCode.NOT_FOUND, f"no result {key[1]} for this user")

    def _add(self, key: tuple[str, str], entry: _Entry) -> None:
        self._order[key] = entry
        self._by_user.setdefault(key[0], {})[key[1]] = entry
        self._user_bytes[key[0]] = self._user_bytes.get(key[0], 0) + entry.nbytes
        self._bytes += entry.nbytes

    def _expire(self, now: float) -> None:
        while self._order:
            key, entry = next(iter(self._order.items()))
            if entry.expires > now:
                return
            self._drop(key, EXPIRED)

    def _drop(self, key: tuple[str, str], reason: str | None) -> None:
        entry = self._order.pop(key)
        user_entries = self._by_user[key[0]]
        del user_entries[key[1]]
        if not user_entries:
            del self._by_user[key[0]]
        self._user_bytes[key[0]] -= entry.nbytes
        if not self._user_bytes[key[0]]:
            del self._user_bytes[key[0]]
        self._bytes -= entry.nbytes
        self._sql("DELETE FROM results WHERE user = ? AND result_id = ?", key)
        if reason is not None:
            self._remember_gone(key, reason, time.time())
        if entry.file is not None and self._directory is not None:
            with contextlib.suppress(FileNotFoundError):
                (self._directory / entry.file).unlink()

    def _remember_gone(self, key: tuple[str, str], reason: str, at: float) -> None:
        self._gone[key] = reason
        self._sql("INSERT OR REPLACE INTO gone VALUES (?, ?, ?, ?)", (*key, reason, at))
        while len(self._gone) > self.remember_gone:
            old, _ = self._gone.popitem(last=False)
            self._sql("DELETE FROM gone WHERE user = ? AND result_id = ?", old)

    # ------------------------------------------------------------------------------------------- disk

    def _open(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(directory / "index.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        now = time.time()
        rows = self._db.execute("SELECT user, result_id, kind, nbytes, expires, file FROM results ORDER BY expires")
        for user, result_id, kind, nbytes, expires, file in rows.fetchall():
            key = (user, result_id)
            if expires <= now:
                self._sql("DELETE FROM results WHERE user = ? AND result_id = ?", key)
                self._remember_gone(key, EXPIRED, expires)
                (directory / file).unlink(missing_ok=True)
            elif not (directory / file).exists():
                self._sql("DELETE FROM results WHERE user = ? AND result_id = ?", key)
            else:
                self._add(key, _Entry(kind, nbytes, expires, None, file, saved_expires=expires))
        for user, result_id, reason in self._db.execute("SELECT user, result_id, reason FROM gone ORDER BY at"):
            self._gone[(user, result_id)] = reason
        known = {entry.file for entry in self._order.values()}
        for path in directory.glob("*.result*"):
            if path.name not in known:  # written, but killed before its index row was committed
                path.unlink(missing_ok=True)
        log.info("result store: %d results (%d bytes) kept from earlier runs", len(self._order), self._bytes)

    def _sql(self, statement: str, args: tuple[Any, ...]) -> None:
        if self._db is not None:
            self._db.execute(statement, args)

    def _write_value(self, result_id: str, value: Any) -> str:
        assert self._directory is not None
        name = f"{result_id}.result"
        fd, tmp = tempfile.mkstemp(dir=self._directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self._directory / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return name

    def _read_value(self, file: str) -> Any:
        assert self._directory is not None
        # The folder is the daemon's own (mode 0700) and only the daemon writes there.
        with open(self._directory / file, "rb") as handle:
            return pickle.load(handle)
