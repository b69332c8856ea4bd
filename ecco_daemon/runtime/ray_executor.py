"""Model replicas on Ray, behind the executor boundary (``ecco-daemon serve --ray``).

Why Ray actors and not Ray Serve: a replica here is a stateful object driven step by step (a decoding
batch lives on it between calls, jobs join it mid-way, cancels reach it mid-call), while the front door
keeps the sockets, users, fair queue and results. Serve would add its own HTTP proxy, router and
autoscaler in front of our own; plain actors give one process per model copy, Ray's restarts, GPU
placement and a handle to call, and nothing else.

The front door keeps every stored result (replicas hand theirs back with each reply), so a view of a
result works whichever replica computed it, even after that replica died: the run travels with the view
job to any live replica of its model, which re-attaches its own copy of the model's final layers.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import ray
from ecco_protocol.errors import ErrorCode

from ecco_daemon import __version__
from ecco_daemon.models.loaded import LoadedModel
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.runtime.executor import wait_for_threads
from ecco_daemon.runtime.job_runner import JobRunner
from ecco_daemon.runtime.lanes import Dispatcher, Lane
from ecco_daemon.runtime.ray_cluster import RayConnection, connect
from ecco_daemon.runtime.remote_lane import RemotePlacement, ReplicaHandle
from ecco_daemon.runtime.replica_monitor import START_TIMEOUT_S, ReplicaMonitor
from ecco_daemon.runtime.replica_wire import check_versions
from ecco_daemon.runtime.worker import LocalPlacement
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job

log = logging.getLogger(__name__)

MAX_RESTARTS = 5  # per replica; past it the replica stays dead and its model's jobs get REPLICA_LOST


class RayExecutor:
    """Replicas per model as Ray actors; a lane (queue + worker thread) per replica; a dispatcher between."""

    def __init__(self, ctx: RuntimeContext, replica_class: type, version: str = __version__) -> None:
        self.ctx = ctx
        self.config = ctx.config
        self.replica_class = replica_class
        self.version = version
        self.runner = JobRunner(ctx)
        self.replicas: dict[str, list[ReplicaHandle]] = {}
        self.lanes: dict[str, Lane] = {}  # by replica name
        self.local = Lane("local", self.runner, FrontDoorPlacement(self), 1)  # jobs on no model (models.load)
        self.dispatcher = Dispatcher(ctx.scheduler, self.route, self.runner)
        self.monitor = ReplicaMonitor(self._placements, version)
        self.connection: RayConnection | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        assert self.config.ray_address is not None
        self.connection = connect(self.config.ray_address, self.config.ray_num_cpus)
        try:
            for model, load in self.ctx.models.loaded():
                self.start_replicas(model, load)
        except BaseException:
            self.connection.close()
            raise
        self.ctx.models.on_load.append(self.start_replicas)
        self.ctx.models.on_unload.append(self.stop_replicas)
        self.local.worker.start()
        self.dispatcher.start()
        self.monitor.start()

    def stop(self, grace_s: float, while_waiting: Any = None) -> bool:
        self.dispatcher.stop()
        lanes = [self.local, *self.lanes.values()]
        for lane in lanes:
            lane.worker.stop()
        ended = wait_for_threads([lane.worker for lane in lanes], grace_s, while_waiting)
        self.monitor.stop()
        for handles in list(self.replicas.values()):
            _kill(handles)
        if self.connection is not None:
            self.connection.close()
        return ended

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            handles = [h for hs in self.replicas.values() for h in hs]
        rows = [self._describe(h) for h in handles]
        return rows + [{"kind": "local", "name": "local", "state": "alive", "pid": None,
                        "queue_length": self.local.queued(), "running": self.local.load() - self.local.queued()}]

    def _describe(self, handle: ReplicaHandle) -> dict[str, Any]:
        lane = self.lanes.get(handle.name)
        queued = lane.queued() if lane is not None else 0
        facts = handle.facts
        return {"kind": "ray", "name": handle.name, "model": handle.model, "state": handle.state,
                "node": facts.get("node_ip"), "node_id": facts.get("node_id"), "host": facts.get("host"),
                "device": facts.get("device"), "pid": facts.get("pid"), "restarts": handle.restarts,
                "queue_length": queued, "running": (lane.load() - queued) if lane is not None else 0,
                "served": handle.dispatched,
                "version": facts.get("version"), "refusal": facts.get("refusal")}

    # ------------------------------------------------------------------------------------- replicas

    def start_replicas(self, model: LoadedModel, load: dict[str, Any]) -> None:
        """Start a model's replicas and wait until each holds its copy; a version mismatch refuses them all."""
        config = self.config
        threads = max(1, round(config.cpus_per_replica))
        actor_class = ray.remote(self.replica_class).options(
            num_cpus=config.cpus_per_replica, num_gpus=config.gpus_per_replica, max_restarts=MAX_RESTARTS,
            max_task_retries=0, max_concurrency=4,
        )
        handles = [ReplicaHandle(f"{model.name}/{i}", model.name,
                                 actor_class.remote(config, load, self.version, threads))
                   for i in range(max(1, config.replicas))]
        self.welcome(handles)
        with self._lock:
            for handle in handles:
                lane = Lane(handle.name, self.runner, RemotePlacement(handle, self.runner), config.max_batch_size)
                self.lanes[handle.name] = lane
                lane.worker.start()
            self.replicas[model.name] = handles
        log.info("%d replica(s) of %s: %s", len(handles), model.name,
                 ", ".join(f"{h.name} pid {h.facts.get('pid')} on {h.facts.get('device')}" for h in handles))

    def welcome(self, handles: list[ReplicaHandle]) -> None:
        """Wait for new replicas' hello and check their versions; any failure ends them all, with the reason."""
        try:
            hellos = ray.get([h.actor.hello.remote() for h in handles], timeout=START_TIMEOUT_S)
            for handle, hello in zip(handles, hellos, strict=True):
                check_versions(self.version, hello["version"], f"{hello.get('host')} ({hello.get('node_ip')})")
                handle.facts, handle.state = hello, "alive"
        except Exception as exc:
            _kill(handles)
            if isinstance(exc, OperationError):
                raise
            raise OperationError(ErrorCode.MODEL_LOAD_FAILED, f"replicas of {handles[0].model} did not start: "
                                                              f"{type(exc).__name__}: {exc}") from exc

    def stop_replicas(self, model: LoadedModel, _: dict[str, Any]) -> None:
        with self._lock:
            handles = self.replicas.pop(model.name, [])
            lanes = [self.lanes.pop(h.name) for h in handles if h.name in self.lanes]
        gone = OperationError(ErrorCode.MODEL_NOT_FOUND, f"model {model.name!r} was unloaded")
        for lane in lanes:
            lane.worker.stop()
            for job in lane.queue.close():  # handed to a replica, not started: answered here
                self.runner.finish(job, gone)
        _kill(handles)

    # -------------------------------------------------------------------------------------- routing

    def route(self, job: Job, room: bool = True) -> Lane | OperationError | None:
        """The least-loaded live replica of the job's model with room (``room=False``: full or not); None
        while all are full or restarting."""
        if job.model is None:
            return self.local
        with self._lock:
            handles = list(self.replicas.get(job.model, ()))
            if not handles:
                return OperationError(ErrorCode.MODEL_NOT_FOUND, f"model {job.model!r} has no replicas (unloaded?)")
            live = [h for h in handles if h.state == "alive"]
            if not live:
                if all(h.state in ("dead", "refused") for h in handles):
                    states = "; ".join(f"{h.name} {h.state}" + (f" ({h.facts['refusal']})" if h.facts.get("refusal")
                                                                  else "") for h in handles)
                    return OperationError(ErrorCode.REPLICA_LOST, f"no replica of {job.model} can take work: {states}")
                return None
            loads = {h.name: self.lanes[h.name].load() for h in live}
            best = min(live, key=lambda h: (loads[h.name], h.dispatched))
            if room and loads[best.name] >= self.config.max_batch_size:
                return None
            best.dispatched += 1
            return self.lanes[best.name]

    def _placements(self) -> list[tuple[ReplicaHandle, Lane]]:
        with self._lock:
            return [(h, self.lanes[h.name]) for hs in self.replicas.values() for h in hs if h.name in self.lanes]


class FrontDoorPlacement(LocalPlacement):
    """The front door's own lane: work on no model runs here (``models.load``); a job that can name its model
    only now (``params.resolve``: a stored run read back from disk, off the loop) goes on to a replica."""

    def __init__(self, executor: RayExecutor) -> None:
        super().__init__(executor.runner)
        self.executor = executor

    def run_alone(self, job: Job) -> None:
        resolve = getattr(job.params, "resolve", None)
        if resolve is None:
            self.runner.run(job)
            return
        try:
            resolve(self.runner.ctx, job)
            lane = self.executor.route(job, room=False)
            if isinstance(lane, OperationError):
                raise lane
            if lane is None or lane is self.executor.local:
                raise OperationError(ErrorCode.REPLICA_LOST,
                                     f"every replica of {job.model} is restarting; send the request again")
            lane.submit(job)
        except Exception as exc:
            self.runner.finish(job, exc)


def _kill(handles: list[ReplicaHandle]) -> None:
    """End these replicas for good (Ray does not restart them); one already gone is no error."""
    for handle in handles:
        try:
            ray.kill(handle.actor, no_restart=True)
        except Exception as exc:
            log.debug("replica %s: %s", handle.name, exc)
