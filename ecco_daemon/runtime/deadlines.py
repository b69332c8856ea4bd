"""Job time limits: one watcher thread raises the cancel flag (code TIMEOUT) of each job past its limit."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING

from ecco_protocol.errors import ErrorCode

if TYPE_CHECKING:
    from ecco_daemon.server.job import Job

log = logging.getLogger(__name__)


class Deadlines(threading.Thread):
    """The work stops at its next cancel check, exactly as on a cancel request."""

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
