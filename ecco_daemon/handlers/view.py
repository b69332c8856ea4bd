"""The "view" operation: a later view of a stored analysis run, computed without running the model again.

Layer predictions at another position, rankings_watch with other tokens or NMF with another k read the
run that "analyze" (or "generate" with analysis) kept in the caller's result store. Attention of a run
kept without it takes one forward of the eager twin (models/attention.py), whatever the model loaded with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecco_protocol.errors import ErrorCode

from ecco_daemon.analysis import service
from ecco_daemon.handlers.analyze import StoredRun, checked
from ecco_daemon.handlers.view_params import RunBounds, check_view_params
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job
from ecco_daemon.server.params import ParamReader
from ecco_daemon.server.registry import OPERATIONS


@dataclass
class ViewRequest:
    result_id: str
    view: str
    params: dict[str, Any]
    float16: bool
    # The stored run, once found: it travels with the job to wherever the view runs (a model replica has no
    # store of its own), and names the model the job runs on.
    stored: StoredRun | None = None

    @classmethod
    def parse(cls, params: dict[str, Any]) -> ViewRequest:
        read = ParamReader(params, ["result_id", "view", "params", "array_dtype"])
        view_params = {} if params.get("params") is None else params["params"]
        if not isinstance(view_params, dict) or not all(isinstance(key, str) for key in view_params):
            raise OperationError(ErrorCode.BAD_REQUEST, "'params' must be a map with string keys")
        return cls(read.str("result_id", max_length=128), read.str("view", max_length=64), view_params,
                   read.choice("array_dtype", ["float32", "float16"], "float32") == "float16")

    def prepare(self, ctx: RuntimeContext, job: Job) -> None:
        # Fails fast (NOT_FOUND, RESULT_EVICTED, another user's id) before the job is queued. A run that is
        # only on disk (after a restart) is not read here, on the loop: the job reads it (and checks the
        # view's parameters against it), and ``resolve`` reads it for an executor that must route the job.
        self.stored = ctx.store.get(job.user.name, self.result_id, kind="analysis", load=False).value
        job.model = self.stored.model if self.stored is not None else None

    def resolve(self, ctx: RuntimeContext, job: Job) -> None:
        """Off the loop: read the run from disk, so that an executor with replicas can route the job."""
        self.stored = ctx.store.get(job.user.name, self.result_id, kind="analysis").value
        job.model = self.stored.model


@OPERATIONS.job("view", parse=ViewRequest.parse)
def view_op(ctx: RuntimeContext, job: Job, request: ViewRequest) -> dict[str, Any]:
    stored = request.stored or ctx.store.get(job.user.name, request.result_id, kind="analysis").value
    lm = ctx.models.get(stored.model)
    run = service.attach(stored.run, lm.model)
    # Every parameter is checked against the model and the run before any work (allocation, indexing).
    params = check_view_params(request.view, request.params, RunBounds.of(run, lm.model.config))
    if request.float16:
        params.setdefault("float16", True)
    if request.view == "attention":  # a run kept without attention gets it from one recording forward
        run = checked(service.with_attention, lm.model, run)
    reply = checked(service.view, run, lm.tokenizer, request.view.replace("-", "_"), params, job.check_cancelled)
    return {"result_id": request.result_id, "view": request.view, "data": reply}
