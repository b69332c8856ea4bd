"""A worker thread: takes jobs from a scheduler and runs them, answering each exactly once.

Jobs whose batch key has a registered batch runner (see ``job_batches``) run together; jobs that arrive
while such a batch runs join it between steps, and other kinds of work get their turn between two steps.
Where the work itself happens is the worker's ``Placement``: here in this process (``LocalPlacement``), or
on a model replica (``runtime.remote_lane``), with the same batching and fairness either way.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Protocol

from ecco_daemon.runtime.job_batches import JobBatch, batch_factory
from ecco_daemon.runtime.job_runner import JobRunner
from ecco_daemon.server.job import Cancelled, Job

if TYPE_CHECKING:
    from ecco_daemon.runtime.scheduler import Scheduler

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 16


class Placement(Protocol):
    """Where a worker's jobs run."""

    def batch(self, batch_key: tuple[Any, ...]) -> JobBatch | None:
        """The batch for jobs with this key, or None when such jobs run one by one."""

    def run_alone(self, job: Job) -> None:
        """Run one job by itself and answer it."""


class LocalPlacement:
    """In this process, on the models this process holds."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    def batch(self, batch_key: tuple[Any, ...]) -> JobBatch | None:
        factory = batch_factory(batch_key)
        return None if factory is None else factory(self.runner.ctx, batch_key)

    def run_alone(self, job: Job) -> None:
        self.runner.run(job)


class Worker(threading.Thread):
    def __init__(self, runner: JobRunner, name: str = "worker-0", max_batch: int = DEFAULT_MAX_BATCH,
                 scheduler: Scheduler | None = None, placement: Placement | None = None) -> None:
        super().__init__(name=name, daemon=True)
        self.runner = runner
        self.scheduler = scheduler if scheduler is not None else runner.ctx.scheduler  # (an empty one is falsy)
        self.placement = placement if placement is not None else LocalPlacement(runner)
        self.max_batch = max(1, max_batch)
        self._stop_event = threading.Event()
        self._held: list[Job] = []  # every job taken since the last round began, for the supervisor

    def run(self) -> None:
        """Supervised: a bug in the worker itself fails the jobs it held with INTERNAL, and the loop goes on."""
        while not self._stop_event.is_set():
            jobs = self._take(self.scheduler.next_batch(max_size=self.max_batch, timeout=0.5))
            if not jobs:
                continue
            try:
                self._run_jobs(jobs, nested=False)
            except Exception as exc:
                log.exception("%s failed outside any job; answering its jobs and carrying on", self.name)
                self.runner.fail_unfinished(self._held, exc)
            self._held = []

    def _take(self, jobs: list[Job]) -> list[Job]:
        self._held += jobs
        return jobs

    def _run_jobs(self, jobs: list[Job], nested: bool) -> None:
        key = jobs[0].batch_key
        try:
            batch = self.placement.batch(key) if key else None
        except Exception as exc:
            self.runner.finish_all([(job, exc) for job in jobs])
            return
        if batch is None:
            for job in jobs:
                self.placement.run_alone(job)
            return
        self._run_batch(batch, jobs, nested)

    def _run_batch(self, batch: JobBatch, jobs: list[Job], nested: bool = False) -> None:
        key = jobs[0].batch_key
        assert key is not None
        self._admit(batch, jobs)
        while batch.active() and not self._stop_event.is_set():
            try:
                self.runner.finish_all(batch.step())
            except Exception as exc:  # the shared pass itself broke: everyone in it gets the error
                log.error("batch %s failed", key, exc_info=exc)
                self.runner.finish_all([(job, exc) for job in batch.drain()])
                return
            if not batch.active():
                break
            joining = self._take(self.scheduler.join_batch(key, self.max_batch - batch.active()))
            self._admit(batch, joining)
            if not joining and not nested:
                # Whoever is next in turn with other work runs now, between two steps of this batch.
                others = self._take(self.scheduler.next_batch_unless(key, self.max_batch))
                if others:
                    self._run_jobs(others, nested=True)
        if batch.active():  # stopping: the daemon answers SHUTTING_DOWN
            self.runner.finish_all([(job, Cancelled()) for job in batch.drain()])

    def _admit(self, batch: JobBatch, jobs: list[Job]) -> None:
        started = [job for job in jobs if self.runner.start(job)]
        if not started:
            return
        try:
            self.runner.finish_all(batch.admit(started))
        except Exception as exc:
            self.runner.finish_all([(job, exc) for job in started])

    def stop(self) -> None:
        self._stop_event.set()
