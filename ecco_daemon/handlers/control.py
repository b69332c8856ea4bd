"""Operations answered on the socket loop at once, never queued behind model work."""

from __future__ import annotations

import os
import time
from typing import Any

from ecco_protocol.version import PROTOCOL_VERSION

from ecco_daemon import __version__
from ecco_daemon.runtime.cancellation import cancel_job
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.server.job import Job, JobState
from ecco_daemon.server.params import ParamReader, no_params
from ecco_daemon.server.registry import OPERATIONS


@OPERATIONS.control("ping", parse=no_params)
def ping(ctx: RuntimeContext, job: Job, params: dict[str, Any]) -> dict[str, Any]:
    return {"pong": True, "time": time.time()}


@OPERATIONS.control("status", parse=no_params)
def status(ctx: RuntimeContext, job: Job, params: dict[str, Any]) -> dict[str, Any]:
    # Users see their own jobs; admins see every queue.
    scope = None if job.user.is_admin else job.user.name
    running = [
        {"id": j.request_id, "user": j.user.name, "op": j.operation.name}
        for j in ctx.inflight.all()
        if j.state is JobState.RUNNING and (scope is None or j.user.name == scope)
    ]
    state = {
        "daemon": {"version": __version__, "protocol": PROTOCOL_VERSION, "pid": os.getpid(),
                   "uptime_s": time.time() - ctx.started, "address": ctx.config.address},
        "user": {"name": job.user.name, "role": job.user.role},
        "models": ctx.models.describe(),
        "devices": _devices(),
        "queue": {"length": len(ctx.scheduler), "running": running,
                  "queued": ctx.scheduler.snapshot(scope)},
        "store": ctx.store.usage(scope),
        **({"replies": ctx.replies.usage()} if job.user.is_admin else {}),
    }
    if job.user.is_admin:
        state["security"] = {"refusals": dict(ctx.refusals)}
        state["executor"] = ctx.describe_executor()
    return state


@OPERATIONS.control("cancel")
def cancel(ctx: RuntimeContext, job: Job, params: dict[str, Any]) -> dict[str, Any]:
    target_id = ParamReader(params, ["target"]).str("target")
    target = ctx.inflight.get(job.user.name, target_id)
    if target is None:
        return {"target": target_id, "cancelled": False, "state": "unknown"}
    state = target.state.value
    cancel_job(ctx, target)
    return {"target": target_id, "cancelled": True, "state": state}


@OPERATIONS.control("shutdown", parse=no_params, admin_only=True)
def shutdown(ctx: RuntimeContext, job: Job, params: dict[str, Any]) -> dict[str, Any]:
    ctx.shutdown_requested.set()
    return {"shutting_down": True}


def _devices() -> list[dict[str, Any]]:
    import torch

    devices: list[dict[str, Any]] = [{"name": "cpu", "type": "cpu", "threads": torch.get_num_threads()}]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            devices.append({"name": f"cuda:{index}", "type": "cuda", "label": torch.cuda.get_device_name(index),
                            "memory_free": free, "memory_total": total})
    return devices
