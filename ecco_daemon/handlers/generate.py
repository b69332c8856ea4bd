"""The "generate" operation: tokens stream back as they are produced; the result keeps every step's
probabilities, and the generated text is analysed too when the request asks.

Batching: requests from any users on one model decode together (``GenerationBatch``). Each job is one row
of a ``BatchDecoder``: its tokens stream to its own requester, its cancel flag (cancel, TIMEOUT,
shutdown) takes only its row out, and a failure in its row answers only it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ecco_protocol.errors import ErrorCode

from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.generation.decoding import (
    BatchDecoder,
    DecodeRow,
    GenerationOutput,
    SamplingParams,
    Step,
    can_batch,
    generate,
)
from ecco_daemon.handlers.analyze import ANALYSIS_PARAMS, read_analysis_options, run_analysis_for
from ecco_daemon.handlers.inputs import check_foils, check_input_limit, check_positions, check_vocabulary, prompt_ids
from ecco_daemon.models.family import ENCODER_DECODER, MASKED
from ecco_daemon.models.tokens import token_texts
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.runtime.job_batches import Outcome, register_batch
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Cancelled, Job
from ecco_daemon.server.params import ParamReader
from ecco_daemon.server.registry import OPERATIONS

GENERATE_PARAMS = [
    "model", "prompt", "input_ids", "generate", "do_sample", "temperature", "top_k", "top_p", "seed",
    "alternatives", "stream", "array_dtype", "analyze", *ANALYSIS_PARAMS,
]


@dataclass
class GenerateRequest:
    model: str | None
    prompt: str | None
    input_ids: list[int] | None
    max_new_tokens: int
    sampling: SamplingParams
    alternatives: int
    stream: bool
    array_dtype: str
    # Set when the caller wants the generated text analysed too (Ecco's generate(..., attribution=[...])).
    analysis: AnalysisOptions | None = None
    # Filled on the loop by prepare(), once the model is known.
    resolved_ids: list[int] = field(default_factory=list)

    @classmethod
    def parse(cls, params: dict[str, Any]) -> GenerateRequest:
        read = ParamReader(params, GENERATE_PARAMS)
        prompt = read.str("prompt", None)
        ids = read.int_list("input_ids", None)
        if (prompt is None) == (ids is None):
            raise OperationError(ErrorCode.BAD_REQUEST, "give exactly one of 'prompt' or 'input_ids'")
        # Any analysis option asks for the analysis: none is silently ignored.
        wants_analysis = read.bool("analyze", False) or any(name in params for name in ANALYSIS_PARAMS)
        return cls(
            model=read.str("model", None, max_length=4096),
            prompt=prompt,
            input_ids=ids,
            max_new_tokens=read.int("generate", 20, minimum=0),
            sampling=SamplingParams(
                do_sample=read.bool("do_sample", False),
                temperature=read.float("temperature", 1.0, minimum=1e-6, maximum=100.0),
                top_k=read.int("top_k", 0, minimum=0),
                top_p=read.float("top_p", 1.0, minimum=1e-6, maximum=1.0),
                seed=read.int("seed", None, minimum=0, maximum=2**63 - 1),
            ),
            alternatives=read.int("alternatives", 5, minimum=0, maximum=100),
            stream=read.bool("stream", True),
            array_dtype=read.choice("array_dtype", ["float32", "float16"], "float32"),
            analysis=read_analysis_options(read) if wants_analysis else None,
        )

    def prepare(self, ctx: RuntimeContext, job: Job) -> None:
        """Checks that need the model, done on the loop so a bad request fails before queueing."""
        config = ctx.config
        lm = ctx.models.get(self.model)
        if lm.family == MASKED:
            raise OperationError(ErrorCode.UNSUPPORTED_MODEL,
                                 f"{lm.name} is a masked language model: it does not generate; use analyze")
        self.model = lm.name
        if self.max_new_tokens > config.max_new_tokens:
            raise OperationError(ErrorCode.TOO_LARGE,
                                 f"'generate' is {self.max_new_tokens}; this daemon allows {config.max_new_tokens} "
                                 "(ecco-daemon serve --max-new-tokens)",
                                 {"limit": config.max_new_tokens, "flag": "--max-new-tokens"})
        ids = prompt_ids(lm, self.prompt, self.input_ids, "prompt")
        check_vocabulary(lm, ids, "input_ids")
        n_tokens = len(ids) + self.max_new_tokens
        self.analysis = check_foils(lm, self.analysis, n_tokens)
        described = f"{len(ids)} input + {self.max_new_tokens} new tokens"
        check_input_limit(n_tokens, config.max_input_tokens, described)
        check_positions(lm, n_tokens, described)
        self.resolved_ids = ids
        job.model = lm.name
        job.cost = n_tokens if self.analysis is None else max(n_tokens, self.analysis.cost(n_tokens))
        # Requests on one model decode together (GenerationBatch) when the model allows it;
        # one that is analysed afterwards runs alone, so its backward passes never hold up other rows.
        job.batch_key = ("generate", lm.name) if can_batch(lm) and self.analysis is None else None


def step_event(tokenizer: Any, position: int, step: Step) -> dict[str, Any]:
    alternatives = token_texts(tokenizer, step.top_ids)
    return {
        "position": position,
        "token_id": step.token_id,
        "token": token_texts(tokenizer, [step.token_id])[0],
        "prob": step.prob,
        "alternatives": [
            {"token": text, "id": int(i), "prob": float(p)}
            for text, i, p in zip(alternatives, step.top_ids, step.top_probs, strict=True)
        ],
    }


def generation_result(tokenizer: Any, out: GenerationOutput, float_dtype: str) -> dict[str, Any]:
    ids = out.all_ids
    k = max((len(s.top_ids) for s in out.steps), default=0)
    top_ids = np.array([s.top_ids for s in out.steps], dtype=np.int64).reshape(len(out.steps), k)
    top_probs = np.array([s.top_probs for s in out.steps], dtype=np.float32).reshape(len(out.steps), k)
    return {
        "token_ids": np.array(ids, dtype=np.int64),
        "tokens": token_texts(tokenizer, ids),
        "n_input_tokens": len(out.input_ids),
        "text": tokenizer.decode(ids, skip_special_tokens=False),
        "generated_text": tokenizer.decode(out.generated_ids, skip_special_tokens=False),
        "probabilities": np.array([s.prob for s in out.steps], dtype=np.float32).astype(float_dtype),
        "alternatives": {
            "ids": top_ids,
            "probs": top_probs.astype(float_dtype),
            "tokens": [token_texts(tokenizer, row) for row in top_ids],
        },
        "stop_reason": out.stop_reason,
    }


def step_listener(job: Job, request: GenerateRequest, tokenizer: Any) -> Callable[[int, Step], None]:
    """What each decoded step sends: a token event, or (``stream: false``) a paced progress count."""
    n_input = len(request.resolved_ids)

    def on_step(index: int, step: Step) -> None:
        if request.stream:
            job.emit("token", step_event(tokenizer, n_input + index, step))
        else:
            job.progress("generating", index + 1, request.max_new_tokens, unit="tokens")

    return on_step


@OPERATIONS.job("generate", parse=GenerateRequest.parse)
def generate_op(ctx: RuntimeContext, job: Job, request: GenerateRequest) -> dict[str, Any]:
    lm = ctx.models.get(request.model)
    on_step = step_listener(job, request, lm.tokenizer)
    out = generate(lm, request.resolved_ids, request.max_new_tokens, request.sampling, request.alternatives,
                   on_step=on_step, check_cancelled=job.check_cancelled)
    return complete_generation(ctx, job, request, out)


def complete_generation(ctx: RuntimeContext, job: Job, request: GenerateRequest,
                        out: GenerationOutput) -> dict[str, Any]:
    """The result of a finished generation; the solo and the batched paths both end here."""
    lm = ctx.models.get(request.model)
    result = generation_result(lm.tokenizer, out, request.array_dtype)
    result["model"] = lm.name
    if request.analysis is not None:
        float16 = request.array_dtype == "float16"
        if lm.family == ENCODER_DECODER:  # the encoder reads the prompt; the decoder's tokens are scored
            analysis = run_analysis_for(ctx, job, lm, out.input_ids, request.analysis, None, out.generated_ids, float16)
        else:
            analysis = run_analysis_for(ctx, job, lm, out.all_ids, request.analysis, len(out.input_ids), None, float16)
        result["analysis"] = analysis
        result["result_id"] = analysis["result_id"]
        return result
    result["result_id"] = ctx.store.put(job.user.name, "generation", out,
                                                 nbytes=64 * (len(out.all_ids) + 1) * max(1, request.alternatives))
    return result


class GenerationBatch:
    """The batch runner for "generate": one decoding row per job, stepped together."""

    def __init__(self, ctx: RuntimeContext, batch_key: tuple[Any, ...]) -> None:
        self.ctx = ctx
        self.lm = ctx.models.get(str(batch_key[1]))
        self.decoder = BatchDecoder(self.lm)

    def admit(self, jobs: list[Job]) -> list[Outcome]:
        rows = [self._row(job) for job in jobs]
        self.decoder.add(rows)
        finished = self.decoder.drop_finished()
        # Rows done at once (no new tokens, or a failed prefill) never entered the decoder.
        leaving = {id(row) for row in finished}
        finished += [row for row in rows if row.done and id(row) not in leaving]
        return self._outcomes(finished)

    def step(self) -> list[Outcome]:
        cancelled = [row for row in self.decoder.rows if row.tag.cancelled]  # type: ignore[attr-defined]
        outcomes = self._outcomes(self.decoder.drop_finished(cancelled))
        if len(self.decoder):
            outcomes += self._outcomes(self.decoder.step())
        return outcomes

    def active(self) -> int:
        return len(self.decoder)

    def drain(self) -> list[Job]:
        return [row.tag for row in self.decoder.drop_finished(list(self.decoder.rows))]  # type: ignore[misc]

    def _row(self, job: Job) -> DecodeRow:
        request: GenerateRequest = job.params
        return DecodeRow(request.resolved_ids, request.max_new_tokens, request.sampling, request.alternatives,
                         on_step=step_listener(job, request, self.lm.tokenizer), tag=job)

    def _outcomes(self, rows: list[DecodeRow]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for row in rows:
            job: Job = row.tag  # type: ignore[assignment]
            if job.cancelled:
                outcomes.append((job, Cancelled()))
            elif row.error is not None:
                outcomes.append((job, row.error))
            else:
                try:
                    outcomes.append((job, complete_generation(self.ctx, job, job.params, row.output)))
                except Exception as exc:
                    outcomes.append((job, exc))
        return outcomes


register_batch("generate")(GenerationBatch)
