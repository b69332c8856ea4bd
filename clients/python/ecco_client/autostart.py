"""A private local daemon for a client that finds none, started as Jupyter starts a kernel.

Why: Ecco's users open a notebook and call ``from_pretrained``; they should not have to start a
service first. When no daemon answers, the client starts ``ecco-daemon serve`` as a child process,
with its own state folder (so its key and connection file are private to this process) on a free
loopback port, and stops it when this process exits. Models are cached as usual
(``~/.cache/ecco-daemon``), so the second start of a model is quick.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecco_client.exceptions import DaemonUnavailable

READY_TIMEOUT_S = 900.0  # a first SmolLM2 start fetches and converts the model
READY_LINE = b"ecco-daemon ready on "
STOP_TIMEOUT_S = 15.0
PROBE_TIMEOUT_S = 3.0  # a live local daemon answers a ping in milliseconds; a stale connection file never does


@dataclass
class PrivateDaemon:
    """One daemon this process started; ``stop()`` ends it and removes its state folder."""

    process: subprocess.Popen[bytes]
    state_dir: Path
    models: list[str] | None  # loaded at start; None: the daemon's default model
    started_s: float = 0.0  # seconds from launch to ready
    _log: object = field(default=None, repr=False)

    @property
    def connection_file(self) -> Path:
        return self.state_dir / "connection.json"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "daemon.log"

    @property
    def address(self) -> str:
        from ecco_protocol.connection_file import read_connection_file

        return read_connection_file(self.connection_file).address

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, n_chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-n_chars:]
        return ""

    def stop(self) -> None:
        if self.alive:
            self.process.terminate()  # SIGTERM: the daemon answers what is pending, then exits
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        with contextlib.suppress(Exception):
            self._log.close()  # type: ignore[union-attr]
        shutil.rmtree(self.state_dir, ignore_errors=True)
        global _RUNNING
        with _LOCK:
            if _RUNNING is self:
                _RUNNING = None


@dataclass(frozen=True)
class Autostart:
    """What a private daemon loads at start, and where: ``connect(autostart=Autostart(["gpt2"], device="cpu"))``.

    ``models`` None: the daemon's default model (the embedded SmolLM2); empty: none (load them later).
    A process has one private daemon: once it runs, later connections share it whatever they ask."""

    models: Sequence[str] | None = None
    device: str | None = None
    dtype: str | None = None


async def connect_or_start(connect: Callable[..., Awaitable[Any]], autostart: Autostart, *,
                           connection_file: str | Path | None, user: str | None, timeout: float) -> Any:
    """The daemon of the user's connection file if one answers at once; else this process's private one.

    A process that has started its private daemon keeps using it."""
    running = _running()
    if running is not None:
        return await connect(connection_file=running.connection_file, timeout=timeout)
    try:
        client = await connect(connection_file=connection_file, user=user, timeout=min(timeout, PROBE_TIMEOUT_S))
    except DaemonUnavailable:
        daemon = await asyncio.to_thread(private_daemon, autostart.models, device=autostart.device,
                                         dtype=autostart.dtype)
        return await connect(connection_file=daemon.connection_file, timeout=timeout)
    client.timeout = timeout  # the probe's short patience was for finding the daemon, not for its jobs
    return client


def private_daemon_at(address: str) -> PrivateDaemon | None:
    """The private daemon this process started that listens at ``address``, if any."""
    running = _running()
    return running if running is not None and running.address == address else None


def _running() -> PrivateDaemon | None:
    with _LOCK:
        return _RUNNING if _RUNNING is not None and _RUNNING.alive else None


_RUNNING: PrivateDaemon | None = None
_LOCK = threading.RLock()  # stop() runs under it when a start fails


def daemon_command() -> list[str]:
    """How to run ``ecco-daemon``: this interpreter's, when the daemon package is installed beside the client."""
    if importlib.util.find_spec("ecco_daemon") is not None:
        return [sys.executable, "-m", "ecco_daemon.cli"]
    found = shutil.which("ecco-daemon")
    if found:
        return [found]
    raise DaemonUnavailable("no daemon answers, and ecco-daemon is not installed here to start one: "
                            "`pip install ecco-daemon`, or connect to a running daemon (connection_file=, ssh=)")


def private_daemon(models: Sequence[str] | None = None, *, device: str | None = None, dtype: str | None = None,
                   ready_timeout: float = READY_TIMEOUT_S) -> PrivateDaemon:
    """This process's private daemon, started once with ``models`` (None: the daemon's default, []: none)."""
    global _RUNNING
    with _LOCK:
        if _running() is not None:
            return _RUNNING
        _RUNNING = _start(None if models is None else list(models), device, dtype, ready_timeout)
        return _RUNNING


def _start(models: list[str] | None, device: str | None, dtype: str | None, ready_timeout: float) -> PrivateDaemon:
    state_dir = Path(tempfile.mkdtemp(prefix="ecco-daemon-private-"))
    command = [*daemon_command(), "--state-dir", str(state_dir), "serve", "--address", "tcp://127.0.0.1:0"]
    for model in models or []:
        command += ["--model", model]
    if models is not None and not models:
        command.append("--no-model")
    if device:
        command += ["--device", device]
    if dtype:
        command += ["--dtype", dtype]
    log = open(state_dir / "daemon.log", "ab")  # closed by stop()
    launched = time.monotonic()
    # Same process group: Ctrl-C in a terminal stops the private daemon with its owner.
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    daemon = PrivateDaemon(process, state_dir, models, _log=log)
    atexit.register(daemon.stop)
    deadline = launched + ready_timeout
    while not (READY_LINE in _read(daemon.log_path) and daemon.connection_file.exists()):
        if not daemon.alive:
            tail = daemon.log_tail()
            daemon.stop()
            raise DaemonUnavailable(f"the private daemon exited with {process.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            daemon.stop()
            raise DaemonUnavailable(f"the private daemon was not ready within {ready_timeout:.0f}s")
        time.sleep(0.05)  # polling the daemon's own ready line, against a deadline
    daemon.started_s = time.monotonic() - launched
    return daemon


def _read(path: Path) -> bytes:
    with contextlib.suppress(OSError):
        return path.read_bytes()
    return b""
