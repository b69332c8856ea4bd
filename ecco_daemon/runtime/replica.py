"""A model replica's side of the executor: one copy of one model, running the same handlers and batches.

Why no Ray here: the actor (``ecco_daemon.replica``) is a thin shell around ``ReplicaService``, so the
replica's logic runs and is tested in a plain process too. Jobs arrive as tickets and become
``ReplicaJob``s whose events are collected instead of sent; results the handlers store are collected as
``Put``s with their ids already chosen; both go back in each call's ``Reply``. The front door keeps the
results, so they outlive this replica.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from ecco_protocol.errors import ErrorCode

from ecco_daemon import __version__
from ecco_daemon.config import DaemonConfig
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.runtime.job_batches import JobBatch, batch_factory
from ecco_daemon.runtime.job_runner import JobRunner
from ecco_daemon.runtime.model_registry import ModelRegistry
from ecco_daemon.runtime.replica_wire import (
    Event,
    JobKey,
    Put,
    Reply,
    Ticket,
    VersionMismatch,
    WireOutcome,
    error_content,
)
from ecco_daemon.runtime.scheduler import Scheduler
from ecco_daemon.runtime.store import check_size, new_result_id
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Cancelled, Job, JobState
from ecco_daemon.server.registry import OPERATIONS
from ecco_daemon.server.users import User

log = logging.getLogger(__name__)

EARLY_CANCELS_KEPT = 1024


class ReplicaJob(Job):
    """A job mirrored on a replica: what it emits goes to ``sink`` for the front door to send."""

    sink: Callable[[Event], None]

    def emit(self, event: str, content: dict[str, Any] | None = None) -> bool:
        self.sink(Event(self.key, event, content or {}))
        return True


class ForwardingStore:
    """The replica's result store: it names each result and hands it on; the front door keeps it."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._puts: list[Put] = []
        self._lock = threading.Lock()

    def put(self, user: str, kind: str, value: Any, nbytes: int, result_id: str | None = None) -> str:
        check_size(nbytes, self.max_bytes)  # the same TOO_LARGE as in process, for this job only
        result_id = result_id or new_result_id()
        with self._lock:
            self._puts.append(Put(user, kind, value, nbytes, result_id))
        return result_id

    def take(self) -> list[Put]:
        with self._lock:
            puts, self._puts = self._puts, []
        return puts


@dataclass
class _Call:
    """What one batch (or one solo run) collects between two calls: its context, events and puts."""

    ctx: RuntimeContext
    events: list[Event]

    def reply(self, outcomes: list[tuple[JobKey, WireOutcome]]) -> Reply:
        events, self.events[:] = list(self.events), []
        return Reply(puts=self.ctx.store.take(), events=events, outcomes=outcomes)  # type: ignore[attr-defined]


class ReplicaService:
    """One model's copy and the batches running on it; every method returns plain data."""

    def __init__(self, config: DaemonConfig, load: dict[str, Any], daemon_version: str, where: str = "") -> None:
        self.where = where or socket.gethostname()
        self.daemon_version = daemon_version
        self.refusal: VersionMismatch | None = None
        self._batches: dict[str, tuple[JobBatch, _Call]] = {}
        self._live: dict[JobKey, ReplicaJob] = {}
        self._early_cancels: OrderedDict[JobKey, str] = OrderedDict()
        self._lock = threading.Lock()
        if daemon_version != __version__:
            # Loaded nothing: this replica only ever answers with the refusal.
            self.refusal = VersionMismatch(daemon_version, __version__, self.where)
            self.model_name = str(load.get("name"))
            self.device = "none"
            return
        options = {k: v for k, v in load.items() if k not in ("spec", "name")}
        models = ModelRegistry(device=options.pop("device", None), dtype=options.pop("dtype", "float32"),
                               compile_decode=options.pop("compile_decode", "auto"))
        model = models.load(load["spec"], name=load.get("name"), **options)
        self.model_name = model.name
        self.device = str(model.device)
        self.ctx = RuntimeContext(config=config, models=models, store=ForwardingStore(config.result_store_bytes),
                                  scheduler=Scheduler(), users=None)  # type: ignore[arg-type]  # no auth here
        self.runner = JobRunner(self.ctx)

    # ----------------------------------------------------------------------------------------- facts

    def hello(self) -> dict[str, Any]:
        """Who this replica is, for the front door's version check and the admin's status."""
        return {"version": __version__, "pid": os.getpid(), "host": self.where, "model": self.model_name,
                "device": self.device, "refusal": None if self.refusal is None else self.refusal.message}

    # ------------------------------------------------------------------------------------------ work

    def admit(self, batch_id: str, batch_key: tuple[Any, ...], tickets: list[Ticket]) -> Reply:
        if self.refusal is not None:
            return Reply(failed=error_content(self.refusal))
        entry = self._batches.get(batch_id)
        if entry is None:
            call = self._new_call()
            factory = batch_factory(batch_key)
            try:
                if factory is None:
                    raise LookupError(f"no batch runner for {batch_key!r} on this replica")
                entry = (factory(call.ctx, batch_key), call)
            except Exception as exc:
                return self._failed(exc)
            self._batches[batch_id] = entry
        batch, call = entry
        jobs = [self._job(ticket, call.events.append) for ticket in tickets]
        try:
            outcomes = batch.admit(jobs)
        except Exception as exc:  # these jobs get the error (the front door answers them); the batch goes on
            for job in jobs:
                self._forget(job.key)
            return self._failed(exc, jobs[0] if jobs else None)
        return self._reply(batch_id, outcomes)

    def step(self, batch_id: str) -> Reply:
        if self.refusal is not None:
            return Reply(failed=error_content(self.refusal))
        batch, _ = self._batches[batch_id]
        try:
            outcomes = batch.step()
        except Exception as exc:  # the shared pass broke: the front door answers everyone in the batch
            log.error("batch %s failed", batch_id, exc_info=exc)
            self.drop(batch_id)
            return self._failed(exc)
        return self._reply(batch_id, outcomes)

    def drop(self, batch_id: str) -> None:
        """Forget a batch the front door gave up on (shutdown, or its pass broke)."""
        entry = self._batches.pop(batch_id, None)
        if entry is not None:
            for job in entry[0].drain():
                self._forget(job.key)

    def run(self, ticket: Ticket) -> Iterator[Reply]:
        """Run one job alone, yielding its events as they happen (streamed tokens) and then its outcome."""
        if self.refusal is not None:
            yield Reply(failed=error_content(self.refusal))
            return
        items: queue.SimpleQueue[Reply | None] = queue.SimpleQueue()
        call = self._new_call()
        job = self._job(ticket, lambda event: items.put(Reply(events=[event])))

        def work() -> None:
            try:
                outcome: Any = job.operation.handler(call.ctx, job, job.params)
            except BaseException as exc:  # answered as this job's error, as the in-process runner does
                outcome = exc
            items.put(call.reply([(job.key, self._wire(job, outcome))]))
            items.put(None)

        threading.Thread(target=work, name=f"run-{ticket.request_id}", daemon=True).start()
        while (item := items.get()) is not None:
            yield item

    def cancel(self, keys: list[tuple[str, str, str]]) -> None:
        """Raise the cancel flag of these jobs (user, request id, code); a job not here yet is flagged on arrival."""
        with self._lock:
            for user, request_id, code in keys:
                job = self._live.get((user, request_id))
                if job is not None:
                    job.cancel(code)
                else:
                    self._early_cancels[(user, request_id)] = code
                    while len(self._early_cancels) > EARLY_CANCELS_KEPT:
                        self._early_cancels.popitem(last=False)

    # ------------------------------------------------------------------------------------- internals

    def _new_call(self) -> _Call:
        return _Call(replace(self.ctx, store=ForwardingStore(self.ctx.config.result_store_bytes)), [])

    def _job(self, ticket: Ticket, sink: Callable[[Event], None]) -> ReplicaJob:
        operation = OPERATIONS.get(ticket.op)
        if operation is None:
            raise KeyError(f"operation {ticket.op!r} is not registered on this replica")
        job = ReplicaJob(ticket.request_id, b"", User(ticket.user, "", ticket.role), operation, ticket.params,
                         outbox=None, signer=None, batch_key=ticket.batch_key, model=ticket.model,  # type: ignore[arg-type]
                         cost=ticket.cost, state=JobState.RUNNING)
        job.sink = sink
        with self._lock:
            code = self._early_cancels.pop(job.key, None)
            if code is not None:
                job.cancel(code)
            self._live[job.key] = job
        return job

    def _forget(self, key: JobKey) -> None:
        with self._lock:
            self._live.pop(key, None)

    def _reply(self, batch_id: str, outcomes: list[tuple[Job, Any]]) -> Reply:
        batch, call = self._batches[batch_id]
        reply = call.reply([(job.key, self._wire(job, outcome)) for job, outcome in outcomes])
        if not batch.active():
            del self._batches[batch_id]
        return reply

    def _failed(self, exc: Exception, job: Job | None = None) -> Reply:
        if isinstance(exc, OperationError):
            return Reply(failed=error_content(exc))
        if job is not None:
            return Reply(failed=error_content(self.runner.error_for(job, exc)))
        log.error("replica call failed", exc_info=exc)
        return Reply(failed=error_content(OperationError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")))

    def _wire(self, job: Job, outcome: Any) -> WireOutcome:
        self._forget(job.key)
        if isinstance(outcome, Cancelled):
            return ("cancelled", None)
        if isinstance(outcome, BaseException):
            return ("error", error_content(self.runner.error_for(job, outcome)))
        return ("result", outcome or {})
