"""Teacher-forced analysis of given text, and later views answered from the stored run.

The run is kept in the caller's result store: layer predictions at another position, rankings_watch
with other tokens or NMF with another k (``view``) read it and never run the model again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecco_protocol.errors import ErrorCode

from ecco_daemon.analysis import service
from ecco_daemon.analysis.attribution import BACKWARD_PRECISIONS, get_attribution_method
from ecco_daemon.analysis.errors import AnalysisError
from ecco_daemon.analysis.run import AnalysisRun
from ecco_daemon.generation.decoding import position_limit
from ecco_daemon.models.loaded import LoadedModel
from ecco_daemon.models.tokens import encode_prompt
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job
from ecco_daemon.server.params import ParamReader
from ecco_daemon.server.registry import OPERATIONS

# What a run may compute; shared by "analyze" and by "generate" with attribution.
ANALYSIS_PARAMS = [
    "attribution", "steps", "foil", "score", "activations", "activation_layers", "attention", "topk", "autocast",
    "backward_precision", "rankings",
]
MAX_IG_STEPS = 1000


@dataclass(frozen=True)
class AnalysisOptions:
    attribution: tuple[str, ...]
    steps: int
    foil: tuple[int, ...] | None
    score: str | None
    activations: bool
    activation_layers: tuple[int, ...] | None
    attention: bool
    topk: int
    autocast: str | None
    backward_precision: str
    rankings: bool

    @classmethod
    def read(cls, read: ParamReader) -> AnalysisOptions:
        methods = tuple(read.str_list("attribution", []))
        for name in methods:
            _checked(get_attribution_method, name)
        foil = read.params.get("foil")
        if isinstance(foil, str):
            raise OperationError(ErrorCode.BAD_REQUEST, "'foil' takes token ids; tokenize the foil text first")
        return cls(
            attribution=methods,
            steps=read.int("steps", 50, minimum=1, maximum=MAX_IG_STEPS),
            foil=tuple(read.int_list("foil", [])) or None,
            score=read.choice("score", ["logit", "prob", "log_prob"], None),
            activations=read.bool("activations", True),
            activation_layers=tuple(read.int_list("activation_layers", [])) or None,
            attention=read.bool("attention", False),
            topk=read.int("topk", 10, minimum=1, maximum=100),
            autocast=read.choice("autocast", ["bfloat16", "float16"], None),
            backward_precision=read.choice("backward_precision", list(BACKWARD_PRECISIONS), "full"),
            rankings=read.bool("rankings", True),
        )

    def cost(self, n_tokens: int) -> int:
        """Work units: every method costs a backward pass per token; IG costs ``steps`` of them."""
        per_token = sum(self.steps if m in ("integrated_gradients", "ig") else 1 for m in self.attribution)
        return n_tokens * max(1, per_token)


@dataclass
class StoredRun:
    """What the store keeps: the run and the model it came from (views need its tokenizer)."""

    run: AnalysisRun
    model: str


def run_analysis_for(ctx: RuntimeContext, job: Job, lm: LoadedModel, ids: list[int], options: AnalysisOptions,
                     first_target: int | None, target_ids: list[int] | None, float16: bool) -> dict[str, Any]:
    """Run, store, and answer with the run's first reply (tokens, scores, rankings, attributions)."""
    if options.attention and not _eager(lm):
        raise OperationError(ErrorCode.UNSUPPORTED_MODEL,
                             f"{lm.name} was loaded without eager attention; load it with "
                             "attn_implementation='eager' to see attention weights")
    job.progress("analysis", tokens=len(ids), methods=list(options.attribution))
    run = _checked(
        service.analyze, lm.model, lm.tokenizer, ids, first_target=first_target, target_ids=target_ids,
        attribution=options.attribution, steps=options.steps,
        foil_ids=list(options.foil) if options.foil else None, score=options.score,
        activations=options.activations, activation_layers=options.activation_layers,
        attention=options.attention, topk=options.topk, autocast=options.autocast,
        backward_precision=options.backward_precision, rankings=options.rankings,
        check_cancelled=job.check_cancelled,
    )
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
        text, input_ids = read.str("text", None), read.int_list("input_ids", None)
        if (text is None) == (input_ids is None):
            raise OperationError(ErrorCode.BAD_REQUEST, "give exactly one of 'text' or 'input_ids'")
        return cls(
            model=read.str("model", None, max_length=4096), text=text, input_ids=input_ids,
            target=read.str("target", None), target_ids=read.int_list("target_ids", None),
            options=AnalysisOptions.read(read),
            float16=read.choice("array_dtype", ["float32", "float16"], "float32") == "float16",
        )

    def prepare(self, ctx: RuntimeContext, job: Job) -> None:
        lm = ctx.models.get(self.model)
        self.model = lm.name
        ids = self.input_ids if self.input_ids is not None else encode_prompt(lm.tokenizer, self.text or "")
        targets = self.target_ids
        if targets is None and self.target is not None:
            targets = [int(i) for i in lm.tokenizer(self.target, add_special_tokens=True)["input_ids"]]
        vocab = lm.model.get_input_embeddings().num_embeddings
        if any(i < 0 or i >= vocab for i in [*ids, *(targets or [])]):
            raise OperationError(ErrorCode.BAD_REQUEST, f"token ids must lie in [0, {vocab})")
        n_tokens = len(ids) + len(targets or [])
        if n_tokens > ctx.config.max_input_tokens:
            raise OperationError(ErrorCode.TOO_LARGE, f"{n_tokens} tokens exceed the limit of "
                                                      f"{ctx.config.max_input_tokens}")
        positions = position_limit(lm)
        longest = len(ids) if lm.family == "causal" else max(len(ids), len(targets or []) + 1)
        if positions is not None and longest > positions:
            # Past its last position the model fails (on CUDA, for every user): refuse before running.
            raise OperationError(ErrorCode.TOO_LARGE, f"{longest} tokens exceed the {positions} positions "
                                                      f"of {lm.name}")
        self.resolved_ids, self.resolved_targets = ids, targets
        job.cost = self.options.cost(n_tokens)
        job.batch_key = self.joint_key(lm)

    def joint_key(self, lm: LoadedModel) -> tuple[Any, ...] | None:
        """Jobs with equal keys share one forward pass (see handlers/analyze_batch): a causal model, the
        same token count, and only what that pass gives (no attention, no attributions' backward passes)."""
        if lm.family != "causal" or self.options.attention or self.options.attribution:
            return None
        assert self.resolved_ids is not None
        return ("analyze", lm.name, len(self.resolved_ids))


@OPERATIONS.job("analyze", parse=AnalyzeRequest.parse)
def analyze_op(ctx: RuntimeContext, job: Job, request: AnalyzeRequest) -> dict[str, Any]:
    lm = ctx.models.get(request.model)
    assert request.resolved_ids is not None
    result = run_analysis_for(ctx, job, lm, request.resolved_ids, request.options, None, request.resolved_targets,
                              request.float16)
    result["batched_with"] = 1  # how many analyses shared the forward pass (see analyze_batch)
    return result


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
        ctx.store.get(job.user.name, self.result_id, kind="analysis")


@OPERATIONS.job("view", parse=ViewRequest.parse)
def view_op(ctx: RuntimeContext, job: Job, request: ViewRequest) -> dict[str, Any]:
    stored: StoredRun = ctx.store.get(job.user.name, request.result_id, kind="analysis").value
    lm = ctx.models.get(stored.model)
    params = dict(request.params)
    if request.float16:
        params.setdefault("float16", True)
    reply = _checked(service.view, stored.run, lm.tokenizer, request.view, params)
    return {"result_id": request.result_id, "view": request.view, "data": reply}


def _checked(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Analysis errors become protocol errors with the analysis's own code."""
    try:
        return fn(*args, **kwargs)
    except AnalysisError as exc:
        raise OperationError(ErrorCode(exc.code), str(exc)) from None


def _eager(lm: LoadedModel) -> bool:
    return getattr(lm.model.config, "_attn_implementation", None) == "eager"
