"""Progress events as a user reads them: the elapsed time and an estimate of the time left, paced.

Why: an attribution loop may advance hundreds of times a second; a socket and a progress bar need a
few updates a second. The first event of a stage or of a new part of it (another method), and the last
one (``done == total``), always go out; the others at most every ``min_interval_s``. The estimate is
the stage's rate so far applied to what is left: ``elapsed / done * (total - done)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ProgressPacer:
    min_interval_s: float = 0.25
    clock: Any = field(default=time.monotonic, repr=False)
    _stage: str | None = None
    _part: Any = None
    _stage_started: float = 0.0
    _last_sent: float = float("-inf")

    def stamp(self, stage: str, done: int | None, total: int | None, extra: dict[str, Any]) -> dict[str, Any] | None:
        """The event's content with ``elapsed_s`` and ``eta_s`` where counts are known; None: skip this one."""
        now = self.clock()
        part = extra.get("method")
        first = stage != self._stage or part != self._part
        if stage != self._stage:
            self._stage, self._stage_started = stage, now
        self._part = part
        content: dict[str, Any] = {"stage": stage, "done": done, "total": total, **extra}
        if done is not None and total:
            elapsed = now - self._stage_started
            content["elapsed_s"] = round(elapsed, 3)
            content["eta_s"] = round(elapsed / done * (total - done), 3) if done > 0 else None
            last = done >= total
            if not (first or last) and now - self._last_sent < self.min_interval_s:
                return None
        self._last_sent = now
        return content
