"""Generation requests from any users on one model, decoded together (the batch runner for "generate").

Each job is one row of a ``BatchDecoder``: its tokens stream to its own requester, its cancel flag
(cancel, TIMEOUT, shutdown) takes only its row out, and a failure in its row answers only it.
"""

from __future__ import annotations

from typing import Any

from ecco_daemon.generation.decoding import BatchDecoder, DecodeRow, Step
from ecco_daemon.handlers.generate import GenerateRequest, complete_generation, step_event
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.runtime.job_batches import Outcome, register_batch
from ecco_daemon.server.job import Cancelled, Job


class GenerationBatch:
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
        n_input = len(request.resolved_ids)
        tokenizer = self.lm.tokenizer

        def on_step(index: int, step: Step) -> None:
            if request.stream:
                job.emit("token", step_event(tokenizer, n_input + index, step))

        return DecodeRow(request.resolved_ids, request.max_new_tokens, request.sampling, request.alternatives,
                         on_step=on_step, tag=job)

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
