"""Generation: tokens stream back as they are produced; the result keeps every step's probabilities."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ecco_protocol.errors import ErrorCode

from ecco_daemon.generation.decoding import GenerationOutput, SamplingParams, Step, can_batch, generate, position_limit
from ecco_daemon.handlers.analyze import ANALYSIS_PARAMS, AnalysisOptions, run_analysis_for
from ecco_daemon.models.tokens import encode_prompt, token_texts
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job
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
        input_ids = read.int_list("input_ids", None)
        if (prompt is None) == (input_ids is None):
            raise OperationError(ErrorCode.BAD_REQUEST, "give exactly one of 'prompt' or 'input_ids'")
        # Any analysis option asks for the analysis: none is silently ignored.
        wants_analysis = read.bool("analyze", False) or any(name in params for name in ANALYSIS_PARAMS)
        return cls(
            model=read.str("model", None, max_length=4096),
            prompt=prompt,
            input_ids=input_ids,
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
            analysis=AnalysisOptions.read(read) if wants_analysis else None,
        )

    def prepare(self, ctx: RuntimeContext, job: Job) -> None:
        """Checks that need the model, done on the loop so a bad request fails before queueing."""
        config = ctx.config
        lm = ctx.models.get(self.model)
        if lm.family == "masked":
            raise OperationError(ErrorCode.UNSUPPORTED_MODEL,
                                 f"{lm.name} is a masked language model: it does not generate; use analyze")
        self.model = lm.name
        if self.max_new_tokens > config.max_new_tokens:
            raise OperationError(ErrorCode.TOO_LARGE,
                                 f"'generate' is {self.max_new_tokens}; this daemon allows {config.max_new_tokens}")
        ids = self.input_ids if self.input_ids is not None else encode_prompt(lm.tokenizer, self.prompt or "")
        if not ids:
            raise OperationError(ErrorCode.BAD_REQUEST, "the prompt is empty after tokenization")
        vocab = lm.model.get_input_embeddings().num_embeddings
        if any(i < 0 or i >= vocab for i in ids):
            raise OperationError(ErrorCode.BAD_REQUEST, f"input_ids must lie in [0, {vocab})")
        if len(ids) + self.max_new_tokens > config.max_input_tokens:
            raise OperationError(ErrorCode.TOO_LARGE,
                                 f"{len(ids)} input + {self.max_new_tokens} new tokens exceed the limit of "
                                 f"{config.max_input_tokens}")
        positions = position_limit(lm)
        if positions is not None and len(ids) + self.max_new_tokens > positions:
            # Past its last position the model fails (on CUDA, for every user): refuse before running.
            raise OperationError(ErrorCode.TOO_LARGE,
                                 f"{len(ids)} input + {self.max_new_tokens} new tokens exceed the "
                                 f"{positions} positions of {lm.name}")
        self.resolved_ids = ids
        job.cost = len(ids) + self.max_new_tokens
        if self.analysis is not None:
            job.cost = max(job.cost, self.analysis.cost(len(ids) + self.max_new_tokens))
        # Requests on one model decode together (handlers/generate_batch.py) when the model allows it;
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


@OPERATIONS.job("generate", parse=GenerateRequest.parse)
def generate_op(ctx: RuntimeContext, job: Job, request: GenerateRequest) -> dict[str, Any]:
    lm = ctx.models.get(request.model)
    n_input = len(request.resolved_ids)

    def on_step(index: int, step: Step) -> None:
        if request.stream:
            job.emit("token", step_event(lm.tokenizer, n_input + index, step))

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
        if lm.family == "encoder-decoder":  # the encoder reads the prompt; the decoder's tokens are scored
            analysis = run_analysis_for(ctx, job, lm, out.input_ids, request.analysis, None, out.generated_ids, float16)
        else:
            analysis = run_analysis_for(ctx, job, lm, out.all_ids, request.analysis, len(out.input_ids), None, float16)
        result["analysis"] = analysis
        result["result_id"] = analysis["result_id"]
        return result
    result["result_id"] = ctx.store.put(job.user.name, "generation", out,
                                                 nbytes=64 * (len(out.all_ids) + 1) * max(1, request.alternatives))
    return result
