"""A request's progress as a caller sees it: the ``on_progress`` callback's ``Progress``, and a tqdm bar.

Why here, below the async core: the daemon's ``queued``, ``progress`` and ``token`` events
(protocol/PROTOCOL.md §5, §5.5) mean the same to every surface; this module turns them into one
``Progress`` value. The Python client shows it as a tqdm bar (in a notebook or a terminal, unless
turned off), the CLI as a rich bar, the language server as ``$/progress``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Progress:
    """Where one request stands: queued (with its position), or ``done`` of ``total`` units of a stage."""

    op: str
    stage: str  # queued | running | loading | analysis | attribution | generating
    done: int | None = None
    total: int | None = None
    unit: str | None = None  # steps | tokens | targets
    method: str | None = None  # attribution: the method now running
    eta_s: float | None = None
    elapsed_s: float | None = None
    queue_position: int | None = None
    queue_length: int | None = None

    @property
    def fraction(self) -> float | None:
        """done / total in 0..1, or None when the stage is not counted."""
        if self.done is None or not self.total:
            return None
        return min(1.0, self.done / self.total)

    def describe(self) -> str:
        """One line for a bar's label: "queued 2 of 3", "attribution (integrated_gradients)"."""
        if self.stage == "queued":
            of = f" of {self.queue_length}" if self.queue_length else ""
            return f"queued {self.queue_position}{of}"
        return f"{self.stage} ({self.method})" if self.method else self.stage


ProgressCallback = Callable[[Progress], None]


class ProgressTracker:
    """Turns one request's events into ``Progress`` values; counts streamed tokens of a generation."""

    def __init__(self, op: str, new_tokens: int = 0) -> None:
        self.op = op
        self.new_tokens = new_tokens
        self.tokens_seen = 0

    def update(self, name: str, content: dict[str, Any]) -> Progress | None:
        if name == "queued":
            return Progress(self.op, "queued", queue_position=_int(content.get("position")),
                            queue_length=_int(content.get("queue_length")))
        if name == "progress":
            return Progress(self.op, str(content.get("stage", "running")), _int(content.get("done")),
                            _int(content.get("total")), _str(content.get("unit")), _str(content.get("method")),
                            _float(content.get("eta_s")), _float(content.get("elapsed_s")))
        if name == "token":
            self.tokens_seen += 1
            return Progress(self.op, "generating", self.tokens_seen, self.new_tokens or None, "tokens")
        return None


def bar_wanted(setting: bool | None) -> bool:
    """Whether to draw a tqdm bar: True/False as given; None: in a notebook, or a terminal on stderr,
    unless $ECCO_PROGRESS is 0."""
    if setting is not None:
        return setting
    if os.environ.get("ECCO_PROGRESS", "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return _in_notebook() or bool(getattr(sys.stderr, "isatty", lambda: False)())


class TqdmBar:
    """A tqdm bar fed ``Progress``: labelled with the stage, the queue position or the method, and reset
    to each counted stage's total. Shown only for work that lasts (``delay``), so quick views never
    flash a bar.
    """

    def __init__(self, title: str, delay: float = 0.5) -> None:
        self.title = title
        self.delay = delay
        self._bar: Any = None
        self._stage: str | None = None

    def __call__(self, progress: Progress) -> None:
        label = f"{self.title}: {progress.describe()}"
        if self._bar is None:
            self._bar = _tqdm()(total=progress.total, desc=label, delay=self.delay, leave=False,
                                unit=f" {progress.unit or 'units'}")
        elif progress.stage != self._stage and progress.total is not None:
            self._bar.reset(total=progress.total)
            self._bar.unit = f" {progress.unit or 'units'}"
        self._stage = progress.stage
        self._bar.set_description_str(label, refresh=False)
        if progress.done is not None:
            self._bar.update(max(0, progress.done - self._bar.n))
            if progress.total is not None and progress.done >= progress.total:
                self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _tqdm() -> Any:
    """tqdm's notebook bar where a kernel with widgets runs, else its text bar."""
    if _in_notebook():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm

            return tqdm
        except ImportError:
            pass
    from tqdm import tqdm

    return tqdm


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    kernel = get() if callable(get) else None
    return kernel is not None and "IPKernelApp" in getattr(kernel, "config", {})


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
