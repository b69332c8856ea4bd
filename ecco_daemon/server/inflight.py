"""The map that makes cancellation work: every unanswered job, by (user, request id)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ecco_daemon.server.job import Job


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
