"""Watching model replicas from the front door: cancels passed on, states followed, restarts greeted.

Why a thread of its own: a cancel (by request, TIMEOUT or shutdown) raises a flag on the front door's job,
which the replica cannot see; this thread passes it on within ``MONITOR_S``, whatever call is running.
Replica states (alive, restarting, dead), restarts and pids come from Ray's GCS actor table, which needs
no dashboard; a restarted replica says hello again, and one of another version is refused work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import ray

from ecco_daemon.runtime.lanes import Lane
from ecco_daemon.runtime.remote_lane import ReplicaHandle
from ecco_daemon.runtime.replica_wire import VersionMismatch, check_versions

log = logging.getLogger(__name__)

MONITOR_S = 0.05  # how often cancels are passed on
REFRESH_S = 0.5  # how often replica states are read from Ray
START_TIMEOUT_S = 900.0  # a replica loads its model (a cold cache converts a GGUF first)
GCS_STATES = {"ALIVE": "alive", "RESTARTING": "restarting", "DEAD": "dead"}


class ReplicaMonitor(threading.Thread):
    """Every replica with its lane, from ``placements``; ``version`` is the daemon's."""

    def __init__(self, placements: Callable[[], list[tuple[ReplicaHandle, Lane]]], version: str) -> None:
        super().__init__(name="replica-monitor", daemon=True)
        self.placements = placements
        self.version = version
        self._stopping = threading.Event()
        self._cancels_sent: set[tuple[str, str]] = set()

    def stop(self) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(2.0)

    def run(self) -> None:
        refreshed = 0.0
        while not self._stopping.wait(MONITOR_S):
            try:
                self._pass_on_cancels()
                if time.monotonic() - refreshed >= REFRESH_S:
                    refreshed = time.monotonic()
                    self._refresh_states()
            except Exception:  # the monitor must outlive a hiccup of Ray's
                log.exception("replica monitor")

    def _pass_on_cancels(self) -> None:
        pairs = self.placements()
        live: set[tuple[str, str]] = set()
        for handle, lane in pairs:
            flagged = [job for job in lane.jobs() if job.cancelled]
            live.update(job.key for job in flagged)
            fresh = [job for job in flagged if job.key not in self._cancels_sent]
            if fresh:
                handle.send("cancel", [(job.user.name, job.request_id, job.cancel_code) for job in fresh])
                self._cancels_sent.update(job.key for job in fresh)
        self._cancels_sent &= live

    def _refresh_states(self) -> None:
        from ray._private import state as gcs  # the GCS's actor table: state, restarts, pid (no dashboard needed)

        for handle, _ in self.placements():
            info = gcs.actors(handle.actor_id)
            if not info:
                continue
            pid, restarts = info.get("Pid"), int(info.get("NumRestarts", 0))
            state = GCS_STATES.get(str(info.get("State")), "starting")
            with handle.lock:
                if handle.state == "refused":
                    continue
                moved_on = restarts > handle.restarts or (pid and pid != handle.facts.get("pid"))
                if state == "alive" and handle.state != "alive" and not moved_on:
                    continue  # Ray has not seen the death yet: wait for the new process
                handle.restarts = restarts
                handle.state = state
                if moved_on and state == "alive":
                    handle.facts = {**handle.facts, "pid": pid}
                    threading.Thread(target=self._greet, args=(handle,), daemon=True).start()

    def _greet(self, handle: ReplicaHandle) -> None:
        """A restarted replica may run on another node: check its version again before it gets work."""
        try:
            hello = ray.get(handle.actor.hello.remote(), timeout=START_TIMEOUT_S)
            check_versions(self.version, hello["version"], f"{hello.get('host')} ({hello.get('node_ip')})")
        except VersionMismatch as exc:
            with handle.lock:
                handle.state, handle.facts = "refused", {**handle.facts, "refusal": exc.message}
            log.error("%s", exc.message)
        except Exception as exc:
            log.warning("replica %s did not answer after its restart: %s", handle.name, exc)
        else:
            with handle.lock:
                handle.facts = hello
