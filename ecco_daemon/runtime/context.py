"""Everything a handler may use, in one object: models, results, the queue, users and settings."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ecco_daemon.config import DaemonConfig
    from ecco_daemon.runtime.model_registry import ModelRegistry
    from ecco_daemon.runtime.scheduler import Scheduler
    from ecco_daemon.runtime.store import ResultStore
    from ecco_daemon.server.job import Job
    from ecco_daemon.server.users import UserStore


class InflightRequests:
    """The map that makes cancellation work: (user, request id) -> job, for every unanswered job."""

    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], Job] = {}
        self._lock = threading.Lock()

    def add(self, job: Job) -> bool:
        with self._lock:
            if job.key in self._jobs:
                return False
            self._jobs[job.key] = job
            return True

    def get(self, user: str, request_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get((user, request_id))

    def remove(self, job: Job) -> None:
        with self._lock:
            if self._jobs.get(job.key) is job:
                del self._jobs[job.key]

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)


@dataclass
class Services:
    config: DaemonConfig
    models: ModelRegistry
    store: ResultStore
    scheduler: Scheduler
    users: UserStore
    inflight: InflightRequests = field(default_factory=InflightRequests)
    started: float = field(default_factory=time.time)
    shutdown_requested: threading.Event = field(default_factory=threading.Event)
    # Messages refused before reaching a handler, by error code (UNAUTHORIZED, BAD_FRAME, TOO_LARGE...).
    refusals: dict[str, int] = field(default_factory=dict)

    def release_device_memory(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
