"""The front door's end of one model replica: its handle, and batches and solo jobs that run on it.

Why this shape: a worker thread of the front door drives each replica with the same ``Worker`` as in
process (fair turns, joining between steps), through a ``RemotePlacement``. A batch step is one call
that returns that step's events, stored results and outcomes; a solo job streams its events as they
happen (a Ray generator), so tokens still reach the client one by one. The front door sends every event
itself (``job.emit``), so signing, ordering and "answered exactly once" stay where they were.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import ray
from ecco_protocol.errors import ErrorCode
from ray.exceptions import RayActorError, RayError

from ecco_daemon.runtime.job_batches import Outcome, batch_factory
from ecco_daemon.runtime.job_runner import JobRunner
from ecco_daemon.runtime.replica_wire import JobKey, Reply, Ticket, error_from
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Cancelled, Job

log = logging.getLogger(__name__)


class ReplicaHandle:
    """One replica actor and what the front door knows of it (its facts come from ``hello`` and Ray's GCS)."""

    def __init__(self, name: str, model: str, actor: Any) -> None:
        self.name = name
        self.model = model
        self.actor = actor
        self.state = "starting"  # starting, alive, restarting, dead, refused
        self.facts: dict[str, Any] = {}
        self.restarts = 0
        self.dispatched = 0  # jobs handed to it so far (ties between equally loaded replicas go round)
        self.lock = threading.Lock()

    @property
    def actor_id(self) -> str:
        return self.actor._actor_id.hex()

    def lost(self, why: BaseException) -> OperationError:
        """A call failed because the replica's process is gone: mark it and say so to the job's caller."""
        with self.lock:
            if self.state == "alive":
                self.state = "restarting"
        log.warning("replica %s of %s was lost: %s", self.name, self.model, why)
        return OperationError(ErrorCode.REPLICA_LOST,
                              f"the model replica {self.name} running this request died before it finished "
                              f"({type(why).__name__}); it restarts by itself, and the request can be sent again",
                              {"replica": self.name})

    def call(self, method: str, *args: Any) -> Any:
        """Call the actor and wait; a dead replica becomes REPLICA_LOST, any other Ray failure INTERNAL."""
        try:
            return ray.get(getattr(self.actor, method).remote(*args))
        except RayActorError as exc:
            raise self.lost(exc) from None
        except RayError as exc:
            raise OperationError(ErrorCode.INTERNAL, f"replica {self.name}: {type(exc).__name__}: {exc}") from None

    def send(self, method: str, *args: Any) -> None:
        """Call the actor without waiting (cancel, drop): a lost replica has nothing left to tell."""
        getattr(self.actor, method).remote(*args)

    def stream(self, ticket: Ticket) -> Iterator[Reply]:
        generator = self.actor.run.options(num_returns="streaming").remote(ticket)
        try:
            for ref in generator:
                yield ray.get(ref)
        except RayActorError as exc:
            raise self.lost(exc) from None
        except RayError as exc:
            raise OperationError(ErrorCode.INTERNAL, f"replica {self.name}: {type(exc).__name__}: {exc}") from None


def apply_reply(runner: JobRunner, jobs: dict[JobKey, Job], reply: Reply) -> list[Outcome]:
    """Act on a replica's reply in its order: store results, send events, then hand back the outcomes."""
    for put in reply.puts:
        runner.ctx.store.put(put.user, put.kind, put.value, put.nbytes, result_id=put.result_id)
    for event in reply.events:
        job = jobs.get(event.key)
        if job is not None:
            job.emit(event.event, event.content)
    if reply.failed is not None:
        raise error_from(reply.failed)
    outcomes: list[Outcome] = []
    for key, (kind, payload) in reply.outcomes:
        job = jobs.get(key)
        if job is None:
            continue
        if kind == "result":
            outcomes.append((job, payload))
        elif kind == "cancelled":
            outcomes.append((job, Cancelled()))
        else:
            outcomes.append((job, error_from(payload)))
    return outcomes


class RemoteBatch:
    """A ``JobBatch`` whose rows live on a replica; the front door keeps only which jobs are in it."""

    def __init__(self, replica: ReplicaHandle, runner: JobRunner, batch_key: tuple[Any, ...]) -> None:
        self.replica = replica
        self.runner = runner
        self.batch_key = batch_key
        self.batch_id = uuid.uuid4().hex
        self.jobs: dict[JobKey, Job] = {}

    def admit(self, jobs: list[Job]) -> list[Outcome]:
        tickets = [Ticket.of(job) for job in jobs]
        reply = self.replica.call("admit", self.batch_id, self.batch_key, tickets)
        new = {job.key: job for job in jobs}
        outcomes = apply_reply(self.runner, {**self.jobs, **new}, reply)  # a refusal: the worker answers `jobs`
        self.jobs.update(new)
        return self._finished(outcomes)

    def step(self) -> list[Outcome]:
        return self._finished(apply_reply(self.runner, self.jobs, self.replica.call("step", self.batch_id)))

    def active(self) -> int:
        return len(self.jobs)

    def drain(self) -> list[Job]:
        jobs, self.jobs = list(self.jobs.values()), {}
        self.replica.send("drop", self.batch_id)
        return jobs

    def _finished(self, outcomes: list[Outcome]) -> list[Outcome]:
        for job, _ in outcomes:
            self.jobs.pop(job.key, None)
        return outcomes


class RemotePlacement:
    """A worker's ``Placement`` on one replica: batches and solo jobs both run there."""

    def __init__(self, replica: ReplicaHandle, runner: JobRunner) -> None:
        self.replica = replica
        self.runner = runner

    def batch(self, batch_key: tuple[Any, ...]) -> RemoteBatch | None:
        return RemoteBatch(self.replica, self.runner, batch_key) if batch_factory(batch_key) else None

    def run_alone(self, job: Job) -> None:
        if not self.runner.start(job):
            return
        try:
            for reply in self.replica.stream(Ticket.of(job)):
                self.runner.finish_all(apply_reply(self.runner, {job.key: job}, reply))
        except Exception as exc:
            if not job.finished:
                self.runner.finish(job, exc)
            return
        if not job.finished:  # a stream that ended without an outcome is a bug, still answered
            self.runner.finish(job, OperationError(ErrorCode.INTERNAL, f"replica {self.replica.name} gave no outcome"))
