"""Teacher-forced analyses from any users that fit one forward pass, run together (the "analyze" batch).

``AnalyzeRequest.joint_key`` gives equal keys only to jobs on one causal model with one token count and
no attention or attributions; their forward is stacked as (B, T) by ``analysis.joint``. Each job gets the
reply it would get alone, plus ``batched_with``: how many analyses shared its pass. A job's own error
(bad layer, cancelled, timed out) answers only it; if the shared pass fails, ``OneShotBatch`` runs each
job alone so only the culprit gets the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ecco_protocol.errors import ErrorCode

from ecco_daemon.analysis import joint, service
from ecco_daemon.analysis.errors import AnalysisError
from ecco_daemon.handlers.analyze import AnalyzeRequest, answer_run
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.runtime.job_batches import one_shot
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job


def _joint_request(job: Job) -> joint.JointRequest:
    request: AnalyzeRequest = job.params
    assert request.resolved_ids is not None
    options = request.options
    return joint.JointRequest(
        input_ids=request.resolved_ids, activations=options.activations,
        activation_layers=options.activation_layers, topk=options.topk, rankings=options.rankings,
        check_cancelled=job.check_cancelled,
    )


def _as_reply_error(exc: Exception) -> Exception:
    if isinstance(exc, AnalysisError):
        return OperationError(ErrorCode(exc.code), str(exc))
    return exc


@one_shot("analyze")
def analyze_together(ctx: RuntimeContext, jobs: Sequence[Job]) -> list[dict[str, Any] | BaseException]:
    outcomes: list[dict[str, Any] | BaseException | None] = [None] * len(jobs)
    live: list[int] = []
    for index, job in enumerate(jobs):
        try:
            job.check_cancelled()
        except Exception as exc:
            outcomes[index] = exc
        else:
            live.append(index)
    if live:
        lm = ctx.models.get(jobs[live[0]].params.model)
        for index in live:
            jobs[index].progress("analysis", tokens=len(jobs[index].params.resolved_ids), methods=[],
                                 batched_with=len(live))
        try:
            arch = service.architecture_for(lm.model)
            requests = [_joint_request(jobs[i]) for i in live]
            runs = joint.analyze_jointly(lm.model, arch, lm.tokenizer, requests)
        except AnalysisError as exc:  # the shared part: raised, so each job is retried alone
            raise _as_reply_error(exc) from None
        for index, run in zip(live, runs, strict=True):
            job = jobs[index]
            if isinstance(run, Exception):
                outcomes[index] = _as_reply_error(run)
                continue
            try:
                result = answer_run(ctx, job, lm, run, job.params.float16)
            except Exception as exc:  # the store refusing this run (too big) is this job's error
                outcomes[index] = exc
            else:
                result["batched_with"] = len(live)
                outcomes[index] = result
    return outcomes  # type: ignore[return-value]
