"""The "view" operation: a later view of a stored analysis run, computed without running the model again.

Layer predictions at another position, rankings_watch with other tokens or NMF with another k read the
run that "analyze" (or "generate" with analysis) kept in the caller's result store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecco_protocol.errors import ErrorCode

from ecco_daemon.analysis import service
from ecco_daemon.handlers.analyze import StoredRun, checked
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job
from ecco_daemon.server.params import ParamReader
from ecco_daemon.server.registry import OPERATIONS


@dataclass(frozen=True)
class ViewRequest:
    result_id: str
    view: str
    params: dict[str, Any]
    float16: bool

    @classmethod
    def parse(cls, params: dict[str, Any]) -> ViewRequest:
        read = ParamReader(params, ["result_id", "view", "params", "array_dtype"])
        view_params = params.get("params") or {}
        if not isinstance(view_params, dict):
            raise OperationError(ErrorCode.BAD_REQUEST, "'params' must be a map")
        return cls(read.str("result_id", max_length=128), read.str("view", max_length=64), view_params,
                   read.choice("array_dtype", ["float32", "float16"], "float32") == "float16")

    def prepare(self, ctx: RuntimeContext, job: Job) -> None:
        # Fails fast (NOT_FOUND, RESULT_EVICTED, another user's id) before the job is queued.
        ctx.store.get(job.user.name, self.result_id, kind="analysis", load=False)


@OPERATIONS.job("view", parse=ViewRequest.parse)
def view_op(ctx: RuntimeContext, job: Job, request: ViewRequest) -> dict[str, Any]:
    stored: StoredRun = ctx.store.get(job.user.name, request.result_id, kind="analysis").value
    lm = ctx.models.get(stored.model)
    params = dict(request.params)
    if request.float16:
        params.setdefault("float16", True)
    run = service.attach(stored.run, lm.model)
    reply = checked(service.view, run, lm.tokenizer, request.view, params)
    return {"result_id": request.result_id, "view": request.view, "data": reply}
