"""A folder cache of converted models, written atomically and checked against a manifest on every use.

Why: converting a model takes tens of seconds and may be interrupted (Ctrl-C, a crash, a full disk). A
folder is built beside its final place, a manifest with each file's size and sha256 is written last, and
one rename publishes it, so a reader sees a complete folder or none. A folder that fails its manifest
(a partial copy, a flipped bit, an edited file) is moved away and rebuilt, with a log line saying why.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ecco_daemon.models.errors import CacheCorruptError, ModelLoadError
from ecco_daemon.models.paths import models_cache_dir

log = logging.getLogger(__name__)

MANIFEST = "ecco-manifest.json"
MANIFEST_FORMAT = 1
# "~" never appears in a key, so staging names of one key never match another key's
SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")
CHUNK = 8 << 20

Builder = Callable[[Path], dict[str, Any]]  # fills the folder it is given; returns facts about the source


def _files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def _sha256(path: Path, bar: tqdm | None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    return digest.hexdigest()


def _hash_bar(total: int, description: str, progress: bool) -> tqdm:
    return tqdm(total=total, desc=description, unit="B", unit_scale=True, disable=not progress, leave=False)


def write_manifest(
    folder: Path, key: str, source: dict[str, Any], *, progress: bool = False
) -> dict[str, Any]:
    """Hash every file of ``folder`` and write the manifest beside them (last, and synced to disk)."""
    files = _files_of(folder)
    entries: dict[str, dict[str, Any]] = {}
    with _hash_bar(sum(f.stat().st_size for f in files), "Hashing", progress) as bar:
        for path in files:
            entries[path.relative_to(folder).as_posix()] = {
                "size": path.stat().st_size,
                "sha256": _sha256(path, bar),
            }
    manifest = {
        "format": MANIFEST_FORMAT,
        "key": key,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "files": entries,
    }
    target = folder / MANIFEST
    with target.open("w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    """The folder's manifest, or CacheCorruptError saying why there is no usable one."""
    path = folder / MANIFEST
    if not path.is_file():
        raise CacheCorruptError(folder, f"{MANIFEST} is missing (an interrupted or foreign write)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheCorruptError(folder, f"{MANIFEST} is unreadable ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise CacheCorruptError(
            folder, f"{MANIFEST} has format {found!r}, this version writes {MANIFEST_FORMAT}"
        )
    if not isinstance(manifest.get("files"), dict) or not manifest["files"]:
        raise CacheCorruptError(folder, f"{MANIFEST} lists no files")
    return manifest


def verify(folder: Path, *, hashes: bool = True, progress: bool = False) -> dict[str, Any]:
    """Check every file the manifest lists: present, same size and (with ``hashes``) same sha256."""
    manifest = read_manifest(folder)
    entries: dict[str, dict[str, Any]] = manifest["files"]
    for relative, entry in entries.items():
        path = folder / relative
        if not path.is_file():
            raise CacheCorruptError(folder, f"{relative} is missing")
        size = path.stat().st_size
        if size != entry.get("size"):
            raise CacheCorruptError(
                folder, f"{relative} has {size} bytes, the manifest says {entry.get('size')}"
            )
    if hashes:
        total = sum(int(e["size"]) for e in entries.values())
        with _hash_bar(total, "Verifying", progress) as bar:
            for relative, entry in entries.items():
                if _sha256(folder / relative, bar) != entry.get("sha256"):
                    raise CacheCorruptError(folder, f"{relative} does not match its sha256 in the manifest")
    return manifest


def _sync_tree(folder: Path) -> None:
    """Flush the folder's files to disk before the rename publishes them."""
    for path in _files_of(folder):
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    with contextlib.suppress(OSError):  # directories cannot be opened for fsync on every platform
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an advisory lock so two processes never build the same entry at once."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; the atomic rename still keeps readers safe
        yield
        return
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another process is building %s; waiting for it", lock_path.stem.lstrip("."))
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class CacheEntry:
    """A cache folder ready to load, and whether this call built it."""

    key: str
    path: Path
    built: bool


class ModelCache:
    """Converted models under one root folder (default: $ECCO_DAEMON_CACHE/models), one folder per key."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else models_cache_dir()

    def path_for(self, key: str) -> Path:
        if not SAFE_KEY.match(key):
            raise ValueError(f"cache key {key!r} is not a safe folder name")
        return self.root / key

    def ensure(self, key: str, build: Builder, *, progress: bool = True, verify_hashes: bool = True) -> Path:
        """The verified folder for ``key``, built with ``build`` first when missing or damaged."""
        return self.prepare(key, build, progress=progress, verify_hashes=verify_hashes).path

    def prepare(
        self, key: str, build: Builder, *, progress: bool = True, verify_hashes: bool = True
    ) -> CacheEntry:
        """Like ``ensure``, and says whether the folder was just built (so needs no second check).

        With ``verify_hashes=False`` an existing folder is checked for its manifest and file sizes only;
        the caller then owes a full ``verify`` (the loader runs it while the model loads).
        """
        final = self.path_for(key)
        self.root.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.root / f".{key}.lock"):
            if final.exists():
                try:
                    verify(final, hashes=verify_hashes, progress=progress)
                    return CacheEntry(key, final, built=False)
                except CacheCorruptError as exc:
                    log.warning("%s; moving it away and rebuilding it", exc)
                    self._discard(final, key)
            self._remove_leftovers(key)
            self._build(key, final, build, progress)
        return CacheEntry(key, final, built=True)

    def discard(self, key: str) -> bool:
        """Remove the entry for ``key`` if present; True when something was removed."""
        final = self.path_for(key)
        if not final.exists():
            return False
        with _exclusive(self.root / f".{key}.lock"):
            self._discard(final, key)
        return True

    def _build(self, key: str, final: Path, build: Builder, progress: bool) -> None:
        staging = self.root / f".tmp~{key}~{os.getpid()}~{secrets.token_hex(4)}"
        staging.mkdir()
        try:
            source = build(staging)
            if not _files_of(staging):
                raise ModelLoadError(f"building the cache entry {key} wrote no files")
            write_manifest(staging, key, source, progress=progress)
            _sync_tree(staging)
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        log.info("cached %s at %s", key, final)

    def _discard(self, final: Path, key: str) -> None:
        trash = self.root / f".trash~{key}~{secrets.token_hex(4)}"
        os.replace(final, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def _remove_leftovers(self, key: str) -> None:
        """Staging folders of builds that died; safe to remove because builders hold the lock."""
        for pattern in (f".tmp~{key}~*", f".trash~{key}~*"):
            for leftover in self.root.glob(pattern):
                log.info("removing %s, left by an interrupted build", leftover)
                shutil.rmtree(leftover, ignore_errors=True)
