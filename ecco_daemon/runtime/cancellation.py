"""Cancelling a job, for whatever reason (the user's request, a client that is gone): one place for it.

A queued job leaves the queue and is answered at once; a running one has its flag raised and stops at
its next check, and the executor answers it with the flag's code.
"""

from __future__ import annotations

from ecco_protocol.errors import ErrorCode

from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job


def cancel_job(ctx: RuntimeContext, job: Job, why: str = "cancelled by request",
               code: ErrorCode = ErrorCode.CANCELLED) -> None:
    job.cancel(code.value, why)
    if ctx.scheduler.remove(job):
        ctx.inflight.remove(job)
        job.fail(OperationError(code, f"{why} (while queued)"))


def cancel_jobs_of_silent_peers(ctx: RuntimeContext, grace_s: float) -> int:
    """The jobs of clients not heard from for ``grace_s`` seconds; their replies would reach nobody."""
    cancelled = 0
    for job in ctx.inflight.all():
        if not job.cancelled and ctx.peers.silent_for(job.identity) > grace_s:
            cancel_job(ctx, job, f"the client sent no heartbeat for {grace_s:g}s")
            cancelled += 1
    return cancelled
