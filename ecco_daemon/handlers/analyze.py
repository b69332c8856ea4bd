"""The "analyze" operation: teacher-forced analysis of given text, alone or stacked with others.

Its options (``AnalysisOptions``, shared with "generate" when the generated text is analysed) are built
once from the request here and travel unchanged to the computation. The run is kept in the caller's
result store, so later views (handlers/view.py) read it and never run the model again.

Batching: ``AnalyzeRequest.joint_key`` gives equal keys only to jobs on one causal model with one token
count and no attention or attributions; their forward is stacked as (B, T) by ``analysis.joint``. Each
job gets the reply it would get alone, plus ``batched_with``: how many analyses shared its pass. A job's
own error (bad layer, cancelled, timed out) answers only it; if the shared pass fails, ``OneShotBatch``
runs each job alone so only the culprit gets the error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ecco_protocol.errors import ErrorCode

from ecco_daemon.analysis import joint, service
from ecco_daemon.analysis.errors import AnalysisError
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.run import AnalysisRun
from ecco_daemon.handlers.inputs import (
    check_foils,
    check_input_limit,
    check_positions,
    check_vocabulary,
    prompt_ids,
)
from ecco_daemon.models.family import CAUSAL
from ecco_daemon.models.loaded import LoadedModel
from ecco_daemon.models.tokens import encode_prompt
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.runtime.job_batches import one_shot
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job
from ecco_daemon.server.params import ParamReader
from ecco_daemon.server.registry import OPERATIONS

# What a run may compute; shared by "analyze" and by "generate" with attribution.
ANALYSIS_PARAMS = [
    "attribution", "steps", "foils", "score", "activations", "activation_layers", "attention", "topk", "autocast",
    "backward_precision", "rankings",
]
MAX_IG_STEPS = 1000
MAX_FOIL_TEXT = 200  # characters of one foil text (a foil is one token)
T = TypeVar("T")


def read_analysis_options(read: ParamReader) -> AnalysisOptions:
    """The request's analysis options, built (and their names checked) once, here."""
    return checked(
        AnalysisOptions,
        attribution=tuple(read.str_list("attribution", [])),
        steps=read.int("steps", 50, minimum=1, maximum=MAX_IG_STEPS),
        foils=tuple(read.ids_or_texts("foils", [], max_text=MAX_FOIL_TEXT)),
        score=read.str("score", None, max_length=64),
        activations=read.bool("activations", True),
        activation_layers=tuple(read.int_list("activation_layers", [])),
        attention=read.bool("attention", False),
        topk=read.int("topk", 10, minimum=1, maximum=100),
        autocast=read.str("autocast", None, max_length=64),
        backward_precision=read.str("backward_precision", "full", max_length=64),
        rankings=read.bool("rankings", True),
    )


@dataclass
class StoredRun:
    """What the store keeps: the run and the model it came from (views need its tokenizer)."""

    run: AnalysisRun
    model: str


def run_analysis_for(ctx: RuntimeContext, job: Job, lm: LoadedModel, ids: list[int], options: AnalysisOptions,
                     first_target: int | None, target_ids: list[int] | None, float16: bool) -> dict[str, Any]:
    """Run, store, and answer with the run's first reply (tokens, scores, rankings, attributions)."""
    job.progress("analysis", tokens=len(ids), methods=list(options.attribution))
    run = checked(service.analyze, lm.model, lm.tokenizer, ids, options, first_target=first_target,
                  target_ids=target_ids, check_cancelled=job.check_cancelled, on_progress=job.progress)
    return answer_run(ctx, job, lm, run, float16)


def answer_run(ctx: RuntimeContext, job: Job, lm: LoadedModel, run: AnalysisRun, float16: bool) -> dict[str, Any]:
    """Store the run for later views and answer with its first reply (solo and batched runs alike)."""
    result = service.run_result(run, lm.tokenizer, float16)
    result["model"] = lm.name
    result["result_id"] = ctx.store.put(job.user.name, "analysis", StoredRun(run, lm.name), run.nbytes)
    return result


@dataclass
class AnalyzeRequest:
    model: str | None
    text: str | None
    input_ids: list[int] | None
    target: str | None
    target_ids: list[int] | None
    options: AnalysisOptions
    float16: bool
    resolved_ids: list[int] | None = None
    resolved_targets: list[int] | None = None

    @classmethod
    def parse(cls, params: dict[str, Any]) -> AnalyzeRequest:
        read = ParamReader(params, ["model", "text", "input_ids", "target", "target_ids", "array_dtype",
                                    *ANALYSIS_PARAMS])
        text, ids = read.str("text", None), read.int_list("input_ids", None)
        if (text is None) == (ids is None):
            raise OperationError(ErrorCode.BAD_REQUEST, "give exactly one of 'text' or 'input_ids'")
        return cls(
            model=read.str("model", None, max_length=4096), text=text, input_ids=ids,
            target=read.str("target", None), target_ids=read.int_list("target_ids", None),
            options=read_analysis_options(read),
            float16=read.choice("array_dtype", ["float32", "float16"], "float32") == "float16",
        )

    def prepare(self, ctx: RuntimeContext, job: Job) -> None:
        lm = ctx.models.get(self.model)
        self.model = lm.name
        ids = prompt_ids(lm, self.text, self.input_ids, "text")
        targets = self.target_ids
        if targets is None and self.target is not None:
            targets = encode_prompt(lm.tokenizer, self.target)
        check_vocabulary(lm, [*ids, *(targets or [])], "token ids")
        self.options = check_foils(lm, self.options, len(ids) + len(targets or [])) or self.options
        n_tokens = len(ids) + len(targets or [])
        check_input_limit(n_tokens, ctx.config.max_input_tokens, f"{n_tokens} tokens")
        longest = len(ids) if lm.family == CAUSAL else max(len(ids), len(targets or []) + 1)
        check_positions(lm, longest, f"{longest} tokens")
        self.resolved_ids, self.resolved_targets = ids, targets
        job.model = lm.name
        job.cost = self.options.cost(n_tokens)
        job.batch_key = self.joint_key(lm)

    def joint_key(self, lm: LoadedModel) -> tuple[Any, ...] | None:
        """Jobs with equal keys share one forward pass (``analyze_together``): a causal model, the same
        token count, and only what that pass gives (no attention, no attributions' backward passes)."""
        if lm.family != CAUSAL or self.options.attention or self.options.attribution:
            return None
        assert self.resolved_ids is not None
        return ("analyze", lm.name, len(self.resolved_ids))


@OPERATIONS.job("analyze", parse=AnalyzeRequest.parse)
def analyze_op(ctx: RuntimeContext, job: Job, request: AnalyzeRequest) -> dict[str, Any]:
    lm = ctx.models.get(request.model)
    assert request.resolved_ids is not None
    result = run_analysis_for(ctx, job, lm, request.resolved_ids, request.options, None, request.resolved_targets,
                              request.float16)
    result["batched_with"] = 1  # how many analyses shared the forward pass (see analyze_together)
    return result


@one_shot("analyze")
def analyze_together(ctx: RuntimeContext, jobs: Sequence[Job]) -> list[dict[str, Any] | BaseException]:
    """Analyses from any users that fit one forward pass, run together; one outcome per job."""
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
        requests = [joint.JointRequest(jobs[i].params.resolved_ids, jobs[i].params.options,
                                       jobs[i].check_cancelled) for i in live]
        # The shared part raises, so each job is retried alone.
        arch = checked(service.architecture_for, lm.model)
        runs = checked(joint.analyze_jointly, lm.model, arch, lm.tokenizer, requests)
        for index, run in zip(live, runs, strict=True):
            job = jobs[index]
            if isinstance(run, Exception):
                outcomes[index] = _reply_error(run)
                continue
            try:
                result = answer_run(ctx, job, lm, run, job.params.float16)
            except Exception as exc:  # the store refusing this run (too big) is this job's error
                outcomes[index] = exc
            else:
                result["batched_with"] = len(live)
                outcomes[index] = result
    return outcomes  # type: ignore[return-value]


def checked(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Analysis errors become protocol errors with the analysis's own code."""
    try:
        return fn(*args, **kwargs)
    except AnalysisError as exc:
        raise _reply_error(exc) from None


def _reply_error(exc: Exception) -> Exception:
    if isinstance(exc, AnalysisError):
        return OperationError(ErrorCode(exc.code), str(exc))
    return exc
