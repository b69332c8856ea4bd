"""Lanes and the dispatcher: how jobs leave the fair queue for one of several places that run them.

Why: with model replicas, each replica forms its own batches, and a job should go to the least-loaded
replica of its model. The dispatcher takes jobs from the fair queue one at a time, in its round-robin
order, and hands each to a lane chosen by a router; a lane is a small queue of its own plus the same
``Worker`` the in-process executor uses. A job whose replicas are all full (or restarting) keeps its
place in the fair queue instead of piling up behind a busy replica.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ecco_daemon.runtime.job_runner import JobRunner
from ecco_daemon.runtime.scheduler import Scheduler
from ecco_daemon.runtime.worker import Placement, Worker
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job

WAIT_S = 0.05  # how often a dispatcher with every lane full looks again


class Lane:
    """Jobs handed to one place (a replica, or this process) and the worker thread that runs them there."""

    def __init__(self, name: str, runner: JobRunner, placement: Placement, max_batch: int) -> None:
        self.name = name
        self.queue = Scheduler(max_queued_per_user=2**31 - 1)  # limits were applied at the front door
        self.worker = Worker(runner, name=f"lane-{name}", max_batch=max_batch, scheduler=self.queue,
                             placement=placement)
        self._jobs: dict[tuple[str, str], Job] = {}  # by job key: dataclass jobs are not hashable
        self._lock = threading.Lock()

    def submit(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.key] = job
        self.queue.submit(job)

    def jobs(self) -> list[Job]:
        """Jobs handed here and not answered yet (queued here or running)."""
        with self._lock:
            self._jobs = {key: job for key, job in self._jobs.items() if not job.finished}
            return list(self._jobs.values())

    def load(self) -> int:
        return len(self.jobs())

    def queued(self) -> int:
        return len(self.queue)


# A router's answer for a job: the lane to run it, an error to answer it with, or None (no room yet).
Route = Callable[[Job], "Lane | OperationError | None"]


class Dispatcher(threading.Thread):
    """Moves jobs from the fair queue to lanes, one at a time, as the router finds room."""

    def __init__(self, scheduler: Scheduler, route: Route, runner: JobRunner) -> None:
        super().__init__(name="dispatcher", daemon=True)
        self.scheduler = scheduler
        self.route = route
        self.runner = runner
        self._stop_event = threading.Event()
        self._choices: dict[int, Lane | OperationError] = {}

    def run(self) -> None:
        while not self._stop_event.is_set():
            self._choices.clear()
            job = self.scheduler.next_accepted(self._accept, timeout=WAIT_S)
            if job is not None:
                self._hand_over(job, self._choices[id(job)])

    def _accept(self, job: Job) -> bool:
        choice = self.route(job)
        if choice is not None:
            self._choices[id(job)] = choice  # the scheduler takes the first job accepted
        return choice is not None

    def _hand_over(self, job: Job, choice: Lane | OperationError) -> None:
        try:
            if isinstance(choice, OperationError):
                raise choice
            choice.submit(job)
        except Exception as exc:  # answered (a bug included), and the dispatcher goes on
            self.runner.finish(job, exc)

    def stop(self) -> None:
        self._stop_event.set()
        self.scheduler.wake()
