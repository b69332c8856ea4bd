"""Generation requests from any users on one model, decoded together (the batch runner for "generate").

Each job is one row of a ``BatchDecoder``: its tokens stream to its own requester, its cancel flag
(cancel, TIMEOUT, shutdown) takes only its row out, and a failure in its row answers only it.
"""

from __future__ import annotations

from typing import Any

from ecco_daemon.generation.decoding import BatchDecoder, DecodeRow, Step
from ecco_daemon.handlers.generate import GenerateRequest, complete_generation, step_event
from ecco_daemon.runtime.context import Services
from ecco_daemon.runtime.job_batches import register_batch
from ecco_daemon.runtime.worker import finish_job
from ecco_daemon.server.job import Cancelled, Job


class GenerationBatch:
    def __init__(self, services: Services, batch_key: tuple[Any, ...]) -> None:
        self.services = services
        self.lm = services.models.get(str(batch_key[1]))
        self.decoder = BatchDecoder(self.lm)

    def admit(self, jobs: list[Job]) -> None:
        rows = [self._row(job) for job in jobs]
        self.decoder.add(rows)
        self._finish(self.decoder.drop_finished())
        # Rows done at once (no new tokens, or a failed prefill) never entered the decoder.
        self._finish([row for row in rows if row.done and not row.tag.finished])  # type: ignore[attr-defined]

    def step(self) -> None:
        cancelled = [row for row in self.decoder.rows if row.tag.cancelled]  # type: ignore[attr-defined]
        self._finish(self.decoder.drop_finished(cancelled))
        if len(self.decoder):
            self._finish(self.decoder.step())

    def active(self) -> int:
        return len(self.decoder)

    def abort(self, error: Exception) -> None:
        for row in self.decoder.drop_finished(list(self.decoder.rows)):
            finish_job(row.tag, error=error)  # type: ignore[arg-type]

    def _row(self, job: Job) -> DecodeRow:
        request: GenerateRequest = job.params
        n_input = len(request.resolved_ids)
        tokenizer = self.lm.tokenizer

        def on_step(index: int, step: Step) -> None:
            if request.stream:
                job.emit("token", step_event(tokenizer, n_input + index, step))

        return DecodeRow(request.resolved_ids, request.max_new_tokens, request.sampling, request.alternatives,
                         on_step=on_step, tag=job)

    def _finish(self, rows: list[DecodeRow]) -> None:
        for row in rows:
            job: Job = row.tag  # type: ignore[assignment]
            if job.finished:
                continue
            if job.cancelled:
                finish_job(job, error=Cancelled())
            elif row.error is not None:
                finish_job(job, error=row.error)
            else:
                try:
                    result = complete_generation(job, job.params, row.output)
                except Exception as exc:
                    finish_job(job, error=exc)
                else:
                    finish_job(job, result=result)


register_batch("generate")(GenerationBatch)
