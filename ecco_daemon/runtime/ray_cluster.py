"""Joining a Ray cluster, or starting a local Ray instance that listens on loopback only.

Why the loopback switch: Ray advertises a machine's reachable address even when told 127.0.0.1 (it
expects a cluster). A local instance, or a cluster at a loopback address, is switched to Ray's
single-machine mode, so nothing of it listens beyond this machine, as the daemon's own socket does.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

NAMESPACE = "ecco-daemon"
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray keeps every address on loopback
AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")


def is_loopback(address: str) -> bool:
    host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def _keep_on_loopback() -> None:
    os.environ[SINGLE_MACHINE_ENV] = "0"  # for the processes Ray starts from here
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # for this process, which has read it already


@dataclass
class RayConnection:
    address: str
    temp_dir: Path | None  # set when this daemon started the instance (removed when it stops)

    def close(self) -> None:
        import ray

        ray.shutdown()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def connect(address: str, num_cpus: int | None = None) -> RayConnection:
    """``address`` "local": a new Ray instance on loopback (Ray's files in a short folder of its own);
    otherwise the cluster at that address (``ray start --head`` prints it; a cluster with token
    authentication needs RAY_AUTH_MODE=token and its token in the environment, as for any Ray driver)."""
    import ray

    if address == "local" or is_loopback(address):
        _keep_on_loopback()
    if address != "local":
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=True)
        log.info("joined the Ray cluster at %s", address)
        return RayConnection(address, None)
    if not any(name in os.environ for name in AUTH_ENV):
        # A token of this instance's own (Ray's default is one file shared by every local instance of the
        # user, ~/.ray/auth_token): only this daemon and the processes Ray starts for it can connect.
        # (Ray turns token mode on by itself for a new instance; it reads the token from here.)
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    # Short: Ray's socket paths live under it and must fit in 107 characters.
    temp_dir = Path(tempfile.mkdtemp(prefix="ecco-ray-", dir="/tmp"))
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _temp_dir=str(temp_dir),
             namespace=NAMESPACE, log_to_driver=True)
    gcs = ray.get_runtime_context().gcs_address
    log.info("started a local Ray instance at %s (files in %s)", gcs, temp_dir)
    return RayConnection(gcs, temp_dir)
