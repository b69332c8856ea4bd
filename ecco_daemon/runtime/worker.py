"""A worker thread per device: takes jobs from the scheduler and runs them, answering each exactly once.

Jobs whose batch key has a registered batch runner (see ``batching``) run together; jobs that arrive
while such a batch runs join it between steps. Every job runs under a time limit: a deadline watcher
raises the job's cancel flag with ``TIMEOUT`` and the work stops at its next check, as on cancel.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ecco_protocol.errors import ErrorCode

from ecco_daemon.runtime.job_batches import JobBatch, batch_factory
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Cancelled, Job, JobState

if TYPE_CHECKING:
    from ecco_daemon.runtime.context import Services

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 16


def is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def error_for(job: Job, exc: BaseException) -> OperationError:
    """The error reply for whatever ended a job: cancel flags, handler errors, OOM, or a bug."""
    if isinstance(exc, Cancelled):
        code = ErrorCode(job.cancel_code)
        why = {
            ErrorCode.SHUTTING_DOWN: "the daemon is shutting down",
            ErrorCode.TIMEOUT: f"the job ran past its time limit of {job.services.config.job_time_limit_s:g}s",
        }.get(code, "cancelled by request")
        return OperationError(code, why)
    if isinstance(exc, OperationError):
        return exc
    if is_out_of_memory(exc):
        log.warning("job %s of %s ran out of memory", job.request_id, job.user.name)
        job.services.release_device_memory()
        return OperationError(ErrorCode.OUT_OF_MEMORY, f"out of memory: {exc}")
    log.error("job %s (%s) failed", job.request_id, job.operation.name, exc_info=exc)
    return OperationError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")


class Deadlines(threading.Thread):
    """Raises the cancel flag (code TIMEOUT) of each running job that passes its time limit."""

    def __init__(self) -> None:
        super().__init__(name="job-deadlines", daemon=True)
        self._heap: list[tuple[float, int, Job]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False

    def watch(self, job: Job, limit_s: float | None) -> None:
        if limit_s is None or limit_s <= 0:
            return
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + limit_s, next(self._order), job))
            self._cond.notify()

    def run(self) -> None:
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                while self._heap and (self._heap[0][0] <= now or self._heap[0][2].finished):
                    _, _, job = heapq.heappop(self._heap)
                    if not job.finished and not job.cancelled:
                        log.warning("job %s of %s passed its time limit", job.request_id, job.user.name)
                        job.cancel(ErrorCode.TIMEOUT.value)
                timeout = self._heap[0][0] - now if self._heap else None
                self._cond.wait(timeout)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()


_DEADLINES: Deadlines | None = None
_DEADLINES_LOCK = threading.Lock()


def deadlines() -> Deadlines:
    """The process's one deadline watcher, started on first use."""
    global _DEADLINES
    with _DEADLINES_LOCK:
        if _DEADLINES is None or not _DEADLINES.is_alive():
            _DEADLINES = Deadlines()
            _DEADLINES.start()
        return _DEADLINES


def start_job(job: Job) -> bool:
    """Mark a job running and start its clock; False (and the job answered) when it was cancelled already."""
    if job.cancelled:
        finish_job(job, error=Cancelled())
        return False
    job.state = JobState.RUNNING
    deadlines().watch(job, job.services.config.job_time_limit_s)
    job.progress("running")
    return True


def finish_job(job: Job, result: dict[str, Any] | None = None, error: BaseException | None = None) -> None:
    """Answer a job exactly once, with its result or the error reply for what ended it."""
    try:
        if error is not None:
            job.fail(error_for(job, error))
        else:
            job.emit("result", result or {})
    finally:
        job.state = JobState.DONE
        job.services.inflight.remove(job)


def run_job(job: Job) -> None:
    """Run one job alone; every way out of the handler ends in exactly one terminal event."""
    if not start_job(job):
        return
    try:
        result = job.operation.handler(job, job.params)
    except Exception as exc:
        finish_job(job, error=exc)
    else:
        finish_job(job, result=result)


class Worker(threading.Thread):
    def __init__(self, services: Services, name: str = "worker-0", max_batch: int = DEFAULT_MAX_BATCH) -> None:
        super().__init__(name=name, daemon=True)
        self.services = services
        self.max_batch = max(1, max_batch)
        self._stop_event = threading.Event()

    def run(self) -> None:
        scheduler = self.services.scheduler
        while not self._stop_event.is_set():
            jobs = scheduler.next_batch(max_size=self.max_batch, timeout=0.5)
            if jobs:
                self._run_jobs(jobs, nested=False)

    def _run_jobs(self, jobs: list[Job], nested: bool) -> None:
        factory = batch_factory(jobs[0].batch_key)
        if factory is None:
            for job in jobs:
                run_job(job)
            return
        try:
            batch = factory(self.services, jobs[0].batch_key)
        except Exception as exc:
            for job in jobs:
                finish_job(job, error=exc)
            return
        self._run_batch(batch, jobs, nested)

    def _run_batch(self, batch: JobBatch, jobs: list[Job], nested: bool = False) -> None:
        key = jobs[0].batch_key
        assert key is not None
        scheduler = self.services.scheduler
        self._admit(batch, jobs)
        while batch.active() and not self._stop_event.is_set():
            try:
                batch.step()
            except Exception as exc:  # the shared pass itself broke: everyone in it gets the error
                log.error("batch %s failed", key, exc_info=exc)
                batch.abort(exc)
                return
            if not batch.active():
                break
            joining = scheduler.join_batch(key, self.max_batch - batch.active())
            self._admit(batch, joining)
            if not joining and not nested:
                # Whoever is next in turn with other work runs now, between two steps of this batch.
                others = scheduler.next_batch_unless(key, self.max_batch)
                if others:
                    self._run_jobs(others, nested=True)
        if batch.active():  # stopping: the daemon answers SHUTTING_DOWN
            batch.abort(Cancelled())

    @staticmethod
    def _admit(batch: JobBatch, jobs: list[Job]) -> None:
        started = [job for job in jobs if start_job(job)]
        if not started:
            return
        try:
            batch.admit(started)
        except Exception as exc:
            for job in started:
                if not job.finished:
                    finish_job(job, error=exc)

    def stop(self) -> None:
        self._stop_event.set()
