"""The executor: the one place that decides where batches of jobs run.

Why a boundary: the socket loop and the scheduler only hand work over and never wait on it. By default
the work runs on worker threads in this process (``ThreadExecutor``); model replicas on Ray
(``ray_executor.RayExecutor``) fit behind the same three calls, because batches return their outcomes
instead of answering jobs.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.runtime.job_runner import JobRunner
from ecco_daemon.runtime.worker import Worker


class Executor(Protocol):
    def start(self) -> None:
        """Begin taking jobs from the context's scheduler."""

    def stop(self, grace_s: float, while_waiting: Any = None) -> bool:
        """Stop taking jobs and wait up to ``grace_s`` for running work; True when all of it ended."""

    def describe(self) -> list[dict[str, Any]]:
        """Where work runs, for the admin's status: one entry per worker or replica."""


class ThreadExecutor:
    """Worker threads in the daemon's own process, sharing its loaded models (the embedded default)."""

    def __init__(self, ctx: RuntimeContext, workers: int = 1, max_batch: int = 16) -> None:
        runner = JobRunner(ctx)
        self.workers = [Worker(runner, name=f"worker-{i}", max_batch=max_batch) for i in range(workers)]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def stop(self, grace_s: float, while_waiting: Any = None) -> bool:
        for worker in self.workers:
            worker.stop()
        return wait_for_threads(self.workers, grace_s, while_waiting)

    def describe(self) -> list[dict[str, Any]]:
        return [{"kind": "thread", "name": w.name, "alive": w.is_alive()} for w in self.workers]


def wait_for_threads(threads: list[threading.Thread], grace_s: float, while_waiting: Any = None) -> bool:
    """Wait up to ``grace_s`` for stopping threads, running ``while_waiting`` meanwhile; True when all ended."""
    deadline = time.monotonic() + grace_s
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        if while_waiting is not None:
            while_waiting()
        time.sleep(0.02)
    return not any(t.is_alive() for t in threads)


def make_executor(ctx: RuntimeContext) -> Executor:
    """Worker threads in this process; model replicas come from the composition (see ``daemon.py``)."""
    return ThreadExecutor(ctx, max_batch=ctx.config.max_batch_size)
