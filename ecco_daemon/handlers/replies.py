"""Fetching a request's final reply again: for a client that fell behind or reconnected (PROTOCOL.md §5.2)."""

from __future__ import annotations

from typing import Any

from ecco_protocol.errors import ErrorCode

from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job
from ecco_daemon.server.params import ParamReader
from ecco_daemon.server.registry import OPERATIONS


@OPERATIONS.control("requests.reply")
def request_reply(ctx: RuntimeContext, job: Job, params: dict[str, Any]) -> dict[str, Any]:
    request_id = ParamReader(params, ["request_id"]).str("request_id", max_length=128)
    # The journal first: a job's final reply is recorded before it leaves the in-flight map.
    reply = ctx.replies.get(job.user.name, request_id)
    if reply is not None:
        return {"request_id": request_id, "state": "done", "event": reply.event, "content": reply.content}
    if ctx.inflight.get(job.user.name, request_id) is not None:
        return {"request_id": request_id, "state": "running"}
    raise OperationError(ErrorCode.NOT_FOUND, f"no final reply kept for request {request_id} of this user")
