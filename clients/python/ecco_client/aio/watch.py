"""What a caller watching a request gets: its ``on_progress`` callback, and a tqdm bar unless turned off.

Why one helper: ``analyze``, ``generate`` and ``load_model`` all take ``on_progress=`` and ``progress=``
and must close their bar however the request ends; they share this context manager.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from ecco_client.aio.request import Event, EventCallback
from ecco_client.progress import ProgressCallback, ProgressTracker, TqdmBar, bar_wanted

log = logging.getLogger(__name__)


@contextlib.contextmanager
def watching(op: str, on_progress: ProgressCallback | None, show: bool | None, *, new_tokens: int = 0,
             also: EventCallback | None = None) -> Iterator[EventCallback | None]:
    """An ``on_event`` for one request that feeds ``on_progress`` and (``show``: True, or None where a
    notebook or terminal is) a tqdm bar, then ``also``; the bar is closed when the block ends."""
    bar = TqdmBar(f"ecco {op}") if bar_wanted(show) else None
    if on_progress is None and bar is None:
        yield also
        return
    tracker = ProgressTracker(op, new_tokens)

    def on_event(event: Event) -> None:
        progress = tracker.update(event.name, event.content)
        if progress is not None:
            if bar is not None:
                bar(progress)
            if on_progress is not None:
                try:
                    on_progress(progress)
                except Exception:  # a faulty callback must not end the request
                    log.exception("on_progress callback failed")
        if also is not None:
            also(event)

    try:
        yield on_event
    finally:
        if bar is not None:
            bar.close()
