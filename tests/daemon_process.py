"""The real daemon as a subprocess on loopback, for service-tier tests (jupyter_client's problemkernel style)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ecco_protocol.connection_file import ConnectionInfo, read_connection_file

READY_TIMEOUT_S = 600.0  # a cold SmolLM2 cache downloads and converts first


@dataclass(frozen=True)
class ExecutorChoice:
    """Extra ``serve`` arguments (and environment) that choose where the daemon runs model work."""

    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


class DaemonProcess:
    def __init__(self, workdir: Path, models: list[str], extra_args: list[str] | None = None,
                 address: str = "tcp://127.0.0.1:0", env: dict[str, str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.state_dir = self.workdir / "state"
        self.log_path = self.workdir / "daemon.log"
        self.models = models
        self.extra_args = extra_args or []
        self.address = address
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def connection_file(self) -> Path:
        return self.state_dir / "connection.json"

    def start(self) -> DaemonProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.connection_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "ecco_daemon.cli", "--state-dir", str(self.state_dir), "serve",
                   "--address", self.address]
        for model in self.models:
            command += ["--model", model]
        if not self.models:
            command.append("--no-model")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **self.env}
        if getattr(self, "_log", None) is not None:
            self._log.close()  # a restart in place appends to the same log
        self._log = open(self.log_path, "ab")
        self._log_start = self._log.tell()
        self.process = subprocess.Popen(command + self.extra_args, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"daemon not ready after {READY_TIMEOUT_S}s:\n{self.log()}")
            time.sleep(0.05)
        return self

    def _ready(self) -> bool:
        return self.connection_file.exists() and b"ecco-daemon ready" in self.log_path.read_bytes()[self._log_start:]

    @property
    def info(self) -> ConnectionInfo:
        return read_connection_file(self.connection_file)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 15.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.terminate()
        finally:
            self.kill()
            self._kill_group()
            self._log.close()

    def _kill_group(self) -> None:
        """Whatever the daemon started and left behind (a local Ray instance's processes) ends with it."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
