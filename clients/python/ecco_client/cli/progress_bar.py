"""The CLI's progress bar: rich's, fed the client's ``Progress`` (queue position, done of total, ETA).

Why not the tqdm bar the library draws: the CLI already prints with rich, and one console keeps the bar
and the output from tearing each other. Drawn on stderr, only on a terminal, and gone when done.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn
from rich.progress import Progress as RichBar

from ecco_client.progress import Progress


class RichProgress:
    """``with RichProgress(console) as on_progress: lm.analyze(..., on_progress=on_progress)``."""

    def __init__(self, console: Console, *, enabled: bool = True) -> None:
        self.enabled = enabled and console.is_terminal
        self._bar = RichBar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[unit]}"), TextColumn("{task.fields[eta]}"),
                            console=console, transient=True, disable=not self.enabled)
        self._task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bar.stop()

    def __call__(self, progress: Progress) -> None:
        fields = {"unit": progress.unit or "", "eta": _eta(progress.eta_s)}
        if self._task is None:
            self._task = self._bar.add_task(progress.describe(), total=progress.total, **fields)
        self._bar.update(self._task, description=progress.describe(), total=progress.total,
                         completed=progress.done or 0, **fields)


def _eta(seconds: float | None) -> str:
    """The daemon's estimate of the time left (its rate so far)."""
    return "" if seconds is None else f"about {seconds:.0f}s left"
