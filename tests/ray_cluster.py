"""A real local Ray cluster on loopback for the tests, held by a helper process that the tests own.

Why a helper process and not `ray start`: `ray stop` would end every Ray on the machine, and `ray start`
wants a fixed port. The helper starts a local instance (Ray picks free ports, all on loopback in its
single-machine mode), prints its address, and shuts it down when its stdin closes or it is killed.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY_CPUS = 2
READY_TIMEOUT_S = 120.0
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "OMP_NUM_THREADS": "1"}

HELPER = """
import os, sys, ray
ray.init(address="local", num_cpus=int(sys.argv[1]), include_dashboard=False, _temp_dir=sys.argv[2],
         log_to_driver=False)
print("RAY_ADDRESS", ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
ray.shutdown()
"""


class RayCluster:
    def __init__(self, num_cpus: int = RAY_CPUS) -> None:
        self.num_cpus = num_cpus
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ecco-rt-", dir="/tmp"))  # short: Ray's socket paths
        self.log_path = self.temp_dir / "helper.log"
        self.process: subprocess.Popen[str] | None = None
        self.address = ""
        # Its own token (not the shared ~/.ray/auth_token): what a process needs to join this cluster.
        self.env = {**LOOPBACK_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}

    def start(self) -> RayCluster:
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", HELPER, str(self.num_cpus), str(self.temp_dir / "ray")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            env={**os.environ, **self.env}, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT_S
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("RAY_ADDRESS "):
                self.address = line.split()[1]
                return self
            if time.monotonic() > deadline:
                break
        self.stop()
        raise RuntimeError(f"the Ray helper did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()
        subprocess.run(["rm", "-rf", str(self.temp_dir)], check=False)
