"""The model cache publishes folders atomically, checks them against their manifest, and rebuilds damage."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ecco_daemon.models.cache import MANIFEST, ModelCache, verify, write_manifest
from ecco_daemon.models.errors import CacheCorruptError, ModelLoadError

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 60.0


class CountingBuilder:
    """Writes two small files (one in a subfolder) and counts its calls."""

    def __init__(self, payload: bytes = b"weights" * 1000) -> None:
        self.calls = 0
        self.payload = payload

    def __call__(self, staging: Path) -> dict:
        self.calls += 1
        (staging / "model.bin").write_bytes(self.payload)
        (staging / "sub").mkdir()
        (staging / "sub" / "tokenizer.json").write_text('{"vocab": {}}')
        return {"kind": "test", "call": self.calls}


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith((".tmp~", ".trash~")))


def test_builds_once_then_reuses(tmp_path: Path):
    cache, build = ModelCache(tmp_path), CountingBuilder()
    first = cache.prepare("entry", build, progress=False)
    second = cache.prepare("entry", build, progress=False)
    assert first.built and not second.built
    assert first.path == second.path == tmp_path / "entry"
    assert build.calls == 1
    manifest = json.loads((first.path / MANIFEST).read_text())
    assert manifest["key"] == "entry" and manifest["source"] == {"kind": "test", "call": 1}
    assert sorted(manifest["files"]) == ["model.bin", "sub/tokenizer.json"]
    assert manifest["files"]["model.bin"]["size"] == 7000
    assert len(manifest["files"]["model.bin"]["sha256"]) == 64
    assert leftovers(tmp_path) == []


def test_failed_build_publishes_nothing_and_cleans_up(tmp_path: Path):
    cache = ModelCache(tmp_path)

    def broken(staging: Path) -> dict:
        (staging / "model.bin").write_bytes(b"half")
        raise ModelLoadError("conversion failed halfway")

    with pytest.raises(ModelLoadError, match="halfway"):
        cache.ensure("entry", broken, progress=False)
    assert not (tmp_path / "entry").exists()
    assert leftovers(tmp_path) == []


def test_builder_that_writes_nothing_is_an_error(tmp_path: Path):
    with pytest.raises(ModelLoadError, match="wrote no files"):
        ModelCache(tmp_path).ensure("entry", lambda staging: {}, progress=False)
    assert not (tmp_path / "entry").exists()


@pytest.mark.parametrize("key", ["../escape", "a/b", "", ".hidden", "x~y"])
def test_unsafe_keys_are_refused(tmp_path: Path, key: str):
    with pytest.raises(ValueError, match="not a safe folder name"):
        ModelCache(tmp_path).path_for(key)


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES = {
    "flipped byte": (
        lambda folder: flip_one_byte(folder / "model.bin"),
        "model.bin does not match its sha256",
    ),
    "truncated": (lambda folder: (folder / "model.bin").write_bytes(b"weights"), "model.bin has 7 bytes"),
    "deleted file": (
        lambda folder: (folder / "sub" / "tokenizer.json").unlink(),
        "sub/tokenizer.json is missing",
    ),
    "no manifest": (lambda folder: (folder / MANIFEST).unlink(), f"{MANIFEST} is missing"),
    "garbled manifest": (lambda folder: (folder / MANIFEST).write_text("{not json"), "is unreadable"),
    "other format": (
        lambda folder: (folder / MANIFEST).write_text(json.dumps({"format": 99, "files": {"a": {}}})),
        "has format 99",
    ),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damage_is_named_by_verify(tmp_path: Path, damage: str):
    folder = ModelCache(tmp_path).ensure("entry", CountingBuilder(), progress=False)
    verify(folder)  # intact
    corrupt, reason = DAMAGES[damage]
    corrupt(folder)
    with pytest.raises(CacheCorruptError, match=reason) as caught:
        verify(folder)
    assert str(folder) in str(caught.value)


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_entry_is_rebuilt_with_a_log_line(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
):
    cache, build = ModelCache(tmp_path), CountingBuilder()
    folder = cache.ensure("entry", build, progress=False)
    corrupt, reason = DAMAGES[damage]
    corrupt(folder)
    with caplog.at_level(logging.WARNING, logger="ecco_daemon.models.cache"):
        again = cache.ensure("entry", build, progress=False)
    assert again == folder and build.calls == 2
    verify(again)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(reason in w and "rebuilding" in w for w in warnings), warnings
    assert leftovers(tmp_path) == []


def test_size_check_without_hashes_misses_a_flipped_byte_but_full_verify_finds_it(tmp_path: Path):
    """prepare(verify_hashes=False) is the fast path; the loader owes the full check (run in a thread)."""
    cache, build = ModelCache(tmp_path), CountingBuilder()
    folder = cache.ensure("entry", build, progress=False)
    flip_one_byte(folder / "model.bin")
    assert not cache.prepare("entry", build, progress=False, verify_hashes=False).built
    with pytest.raises(CacheCorruptError, match="sha256"):
        verify(folder)


def test_write_manifest_hashes_what_is_there(tmp_path: Path):
    (tmp_path / "a.txt").write_text("abc")
    manifest = write_manifest(tmp_path, "k", {"x": 1})
    assert manifest["files"]["a.txt"] == {
        "size": 3,
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    }
    assert json.loads((tmp_path / MANIFEST).read_text()) == manifest


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from ecco_daemon.models.cache import ModelCache

    root, marker, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    def build(staging):
        with open(marker, "a") as log:
            log.write("built\\n")
        (staging / "model.bin").write_bytes(b"partial" * 1000)
        if mode == "hang":
            time.sleep(600)
        time.sleep(float(mode))
        return {"kind": "child"}

    ModelCache(root).ensure("entry", build, progress=False)
    """
)


def start_child(root: Path, marker: Path, mode: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(marker), mode], env=env)


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_killed_build_leaves_no_entry_and_the_next_build_cleans_up(tmp_path: Path):
    marker = tmp_path / "marker"
    root = tmp_path / "cache"
    child = start_child(root, marker, "hang")
    try:
        wait_for(lambda: marker.exists() and any(root.glob(".tmp~entry~*/model.bin")), "the child's build")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=DEADLINE_S)
    assert not (root / "entry").exists(), "a killed build must not publish its folder"
    assert len(leftovers(root)) == 1
    build = CountingBuilder()
    folder = ModelCache(root).ensure("entry", build, progress=False)
    assert build.calls == 1 and (folder / "model.bin").read_bytes() == build.payload
    assert leftovers(root) == []


def test_two_processes_build_an_entry_once(tmp_path: Path):
    marker = tmp_path / "marker"
    root = tmp_path / "cache"
    children = [start_child(root, marker, "0.5") for _ in range(2)]
    for child in children:
        assert child.wait(timeout=DEADLINE_S) == 0
    assert marker.read_text().splitlines() == ["built"]
    verify(root / "entry")
    assert leftovers(root) == []
