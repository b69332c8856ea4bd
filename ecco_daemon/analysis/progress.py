"""How far an analysis has got: the checkpoint its long loops call between pieces of work.

Why one object for cancelling and counting: every place a job may stop (between attribution blocks,
integrated-gradients steps, occluded copies) is also a place where a known amount of work is done. The
loops call ``checkpoint()`` before a piece and ``checkpoint.advance(n)`` after it; the total is known
before the first piece (``attribution.work_units``), so a caller sees ``done`` of ``total`` from the
start. The sink is a plain callable: this package knows nothing of jobs or sockets; the daemon's sink
adds the elapsed time and the ETA, and paces the events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Raises to cancel (the daemon passes its job's check_cancelled).
CancelCheck = Callable[[], None]
# sink(stage, done, total, **extra): one progress report.
ProgressSink = Callable[..., None]


def _never_cancelled() -> None:
    """The cancel check of a caller that never cancels."""


class Checkpoint:
    """Cancel check and work counter of one run: ``done`` of ``total`` units, across all its methods."""

    def __init__(self, check_cancelled: CancelCheck | None = None, sink: ProgressSink | None = None,
                 stage: str = "attribution") -> None:
        self.check_cancelled = check_cancelled or _never_cancelled
        self.sink = sink
        self.stage = stage
        self.total = 0
        self.done = 0
        self.extra: dict[str, Any] = {}

    @classmethod
    def of(cls, value: Checkpoint | CancelCheck | None) -> Checkpoint:
        """A checkpoint from what a caller passed: one already, a bare cancel check, or nothing."""
        return value if isinstance(value, Checkpoint) else cls(value)

    def __call__(self) -> None:
        self.check_cancelled()

    def plan(self, units: int) -> None:
        """Add work to the total before it starts (each method's units, before the first runs)."""
        self.total += max(0, int(units))

    def begin(self, **extra: Any) -> None:
        """A new part of the work starts (a method): its description goes with every later report."""
        self.extra = extra
        self._report()

    def advance(self, units: int = 1) -> None:
        self.done = min(self.total, self.done + max(0, int(units))) if self.total else self.done + int(units)
        self._report()

    def _report(self) -> None:
        if self.sink is not None and self.total:
            self.sink(self.stage, self.done, self.total, **self.extra)
