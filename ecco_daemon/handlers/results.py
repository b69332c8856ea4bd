"""The caller's stored results: what a result id holds, and freeing it early.

Results live in a per-user store, so another user's result id answers NOT_FOUND exactly as an id
that never existed: nothing tells one user what another has.
"""

from __future__ import annotations

import time
from typing import Any

from ecco_protocol.errors import ErrorCode

from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job
from ecco_daemon.server.params import ParamReader
from ecco_daemon.server.registry import OPERATIONS


@OPERATIONS.control("results.info")
def result_info(ctx: RuntimeContext, job: Job, params: dict[str, Any]) -> dict[str, Any]:
    result_id = ParamReader(params, ["result_id"]).str("result_id", max_length=128)
    entry = ctx.store.get(job.user.name, result_id, load=False)
    return {"result_id": result_id, "kind": entry.kind, "bytes": entry.nbytes,
            "expires_in_s": max(0.0, entry.expires - time.time())}


@OPERATIONS.control("results.release")
def release_result(ctx: RuntimeContext, job: Job, params: dict[str, Any]) -> dict[str, Any]:
    result_id = ParamReader(params, ["result_id"]).str("result_id", max_length=128)
    if not ctx.store.release(job.user.name, result_id):
        raise OperationError(ErrorCode.NOT_FOUND, f"no result {result_id} for this user")
    return {"result_id": result_id, "released": True}
