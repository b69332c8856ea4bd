"""A job's life on the executor: start its clock, run its handler, answer it exactly once."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ecco_protocol.errors import ErrorCode

from ecco_daemon.runtime.deadlines import deadlines
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Cancelled, Job, JobState

if TYPE_CHECKING:
    from ecco_daemon.runtime.context import RuntimeContext
    from ecco_daemon.runtime.job_batches import Outcome

log = logging.getLogger(__name__)


def is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


class JobRunner:
    """Everything an executor needs to run jobs and answer them; it holds the context, the jobs don't."""

    def __init__(self, ctx: RuntimeContext) -> None:
        self.ctx = ctx

    def start(self, job: Job) -> bool:
        """Mark a job running and start its clock; False (and the job answered) when it was cancelled already."""
        if job.cancelled:
            self.finish(job, Cancelled())
            return False
        job.state = JobState.RUNNING
        deadlines().watch(job, self.ctx.config.job_time_limit_s)
        job.progress("running")
        return True

    def finish(self, job: Job, outcome: dict[str, Any] | BaseException | None) -> None:
        """Answer a job exactly once, with its result or the error reply for what ended it."""
        if job.cancelled and not isinstance(outcome, BaseException):
            # Finished after its flag went up (a time limit, a cancel): the flag wins, as the caller was told.
            outcome = Cancelled()
        try:
            if isinstance(outcome, BaseException):
                job.fail(self.error_for(job, outcome))
            else:
                try:
                    job.emit("result", outcome or {})
                except Exception as exc:  # a result the wire cannot carry is a bug; the caller still hears of it
                    job.fail(self.error_for(job, exc))
        finally:
            job.state = JobState.DONE
            self.ctx.inflight.remove(job)

    def fail_unfinished(self, jobs: list[Job], exc: BaseException) -> None:
        """After a bug outside any job's own work: every job it held is answered, none waits forever."""
        self.finish_all([(job, exc) for job in jobs])

    def finish_all(self, outcomes: list[Outcome]) -> None:
        for job, outcome in outcomes:
            if not job.finished:
                self.finish(job, outcome)

    def run(self, job: Job) -> None:
        """Run one job alone; every way out of the handler ends in exactly one terminal event."""
        if not self.start(job):
            return
        try:
            result = job.operation.handler(self.ctx, job, job.params)
        except Exception as exc:
            self.finish(job, exc)
        else:
            self.finish(job, result)

    def error_for(self, job: Job, exc: BaseException) -> OperationError:
        """The error reply for whatever ended a job: cancel flags, handler errors, OOM, or a bug."""
        if isinstance(exc, Cancelled):
            code = ErrorCode(job.cancel_code)
            why = {
                ErrorCode.SHUTTING_DOWN: "the daemon is shutting down",
                ErrorCode.TIMEOUT: f"the job ran past its time limit of {self.ctx.config.job_time_limit_s:g}s",
            }.get(code, "cancelled by request")
            return OperationError(code, job.cancel_reason or why)
        if isinstance(exc, OperationError):
            return exc
        if is_out_of_memory(exc):
            log.warning("job %s of %s ran out of memory", job.request_id, job.user.name)
            self.ctx.release_device_memory()
            return OperationError(ErrorCode.OUT_OF_MEMORY, f"out of memory: {exc}")
        log.error("job %s (%s) failed", job.request_id, job.operation.name, exc_info=exc)
        return OperationError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
