"""Cross-user batching: how jobs that share a batch key run together.

A job's ``batch_key`` (set by its request's ``prepare``) is ``(kind, model, ...)``. When a factory is
registered for ``kind``, the executor hands every compatible queued job to one ``JobBatch`` instead of
running them one by one. Two shapes of batched work fit this:

- stepped work (generation): ``admit`` prefills new jobs, ``step`` advances all of them one token, and
  jobs that arrive meanwhile join between steps;
- one-pass work (teacher-forced analyses): use ``OneShotBatch`` with a function that takes the jobs and
  returns one result (or exception) per job; it runs them in one forward pass where the shapes allow.

A batch never answers a job itself: ``admit`` and ``step`` return the jobs that finished with their
outcome, and the executor answers them. So one job's failure is that job's error only, and a batch runs
the same wherever the executor puts it (a thread here, a model replica elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ecco_daemon.runtime.context import RuntimeContext
    from ecco_daemon.server.job import Job

# A finished job and how it ended: the result to send, or the exception that ended it.
Outcome = tuple["Job", "dict[str, Any] | BaseException"]


class JobBatch(Protocol):
    def admit(self, jobs: list[Job]) -> list[Outcome]:
        """Take these (already started) jobs in; the ones that cannot run are returned with their error."""

    def step(self) -> list[Outcome]:
        """Advance every job a step; the ones that finished are returned."""

    def active(self) -> int:
        """How many jobs are still in the batch (0 ends it)."""

    def drain(self) -> list[Job]:
        """Take every job still in the batch out (shutdown, or the shared pass broke)."""


BatchFactory = Callable[["RuntimeContext", tuple[Any, ...]], JobBatch]
_FACTORIES: dict[str, BatchFactory] = {}


def register_batch(kind: str) -> Callable[[BatchFactory], BatchFactory]:
    """Register the batch runner for jobs whose batch key starts with ``kind``; duplicates are refused."""

    def decorator(factory: BatchFactory) -> BatchFactory:
        if kind in _FACTORIES:
            raise ValueError(f"a batch runner for {kind!r} is registered twice")
        _FACTORIES[kind] = factory
        return factory

    return decorator


def batch_factory(batch_key: tuple[Any, ...] | None) -> BatchFactory | None:
    if not batch_key:
        return None
    return _FACTORIES.get(str(batch_key[0]))


OneShot = Callable[["RuntimeContext", Sequence["Job"]], Sequence["dict[str, Any] | BaseException"]]


class OneShotBatch:
    """Adapter for work done in one pass: ``run(ctx, jobs)`` returns a result or exception per job."""

    def __init__(self, ctx: RuntimeContext, run: OneShot) -> None:
        self.ctx = ctx
        self.run = run
        self._jobs: list[Job] = []

    def admit(self, jobs: list[Job]) -> list[Outcome]:
        self._jobs += jobs
        return []

    def step(self) -> list[Outcome]:
        jobs, self._jobs = self._jobs, []
        try:
            outcomes = self._run_checked(jobs)
        except Exception as exc:
            # The joint pass failed (one huge input, say): run each alone so only the culprit gets an error.
            outcomes = [exc] if len(jobs) == 1 else [self._run_alone(job) for job in jobs]
        return list(zip(jobs, outcomes, strict=True))

    def _run_checked(self, jobs: list[Job]) -> list[dict[str, Any] | BaseException]:
        outcomes = list(self.run(self.ctx, jobs))
        if len(outcomes) != len(jobs):
            raise RuntimeError(f"batch runner answered {len(outcomes)} of {len(jobs)} jobs")
        return outcomes

    def _run_alone(self, job: Job) -> dict[str, Any] | BaseException:
        try:
            return self._run_checked([job])[0]
        except Exception as exc:
            return exc

    def active(self) -> int:
        return len(self._jobs)

    def drain(self) -> list[Job]:
        jobs, self._jobs = self._jobs, []
        return jobs


def one_shot(kind: str) -> Callable[[OneShot], OneShot]:
    """Register a one-pass batch function: ``@one_shot("analyze")`` over ``fn(ctx, jobs) -> outcomes``."""

    def decorator(run: OneShot) -> OneShot:
        register_batch(kind)(lambda ctx, key: OneShotBatch(ctx, run))
        return run

    return decorator
