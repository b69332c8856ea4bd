"""Server-initiated ``$/progress`` for the daemon work a command waits on: queueing, model loading,
analysis and generation, fed by the daemon's queued/progress/token events (read by the client's
``ProgressTracker``, as the Python client's bars are)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ecco_client.aio.request import Event
from ecco_client.progress import Progress, ProgressTracker

log = logging.getLogger(__name__)
PROGRESS_NOTIFICATION = "ecco/progress"


def client_supports_progress(ls: LanguageServer) -> bool:
    window = ls.client_capabilities.window if ls.client_capabilities else None
    return bool(window and window.work_done_progress)


class WorkProgress:
    """One work-done progress: ``async with WorkProgress(ls, "Analyzing") as p: p.event(e)``.

    ``$/progress`` where the client announced window.workDoneProgress; every client also gets
    ``ecco/progress`` (title, message, percentage, done), which the VS Code extension shows in its panel
    and status bar. When the user cancels the progress in the editor, ``on_cancel`` runs (the caller
    cancels the daemon job there).
    """

    def __init__(
        self,
        ls: LanguageServer,
        title: str,
        *,
        on_cancel: Callable[[], None] | None = None,
        total_tokens: int = 0,
    ) -> None:
        self.ls = ls
        self.title = title
        self.on_cancel = on_cancel
        self.tracker = ProgressTracker(title, total_tokens)
        self.id = f"ecco-{uuid.uuid4().hex}"
        self.token: str | None = None

    async def __aenter__(self) -> WorkProgress:
        self._notify("sent to the daemon", 0, done=False)
        if not client_supports_progress(self.ls):
            return self
        token = self.id
        try:
            await self.ls.work_done_progress.create_async(token)
        except Exception as exc:  # a client may refuse; the work goes on without a progress bar
            log.info("the client refused a progress token: %s", exc)
            return self
        self.token = token
        cancel_future = self.ls.work_done_progress.tokens.get(token)
        if cancel_future is not None and self.on_cancel is not None:
            on_cancel = self.on_cancel
            cancel_future.add_done_callback(lambda f: on_cancel() if f.cancelled() else None)
        self.ls.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title=self.title,
                cancellable=self.on_cancel is not None,
                message="sent to the daemon",
                percentage=0,
            ),
        )
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            message = "done"
        elif issubclass(exc_type, asyncio.CancelledError):
            message = "cancelled"
        else:
            message = f"failed: {exc}"
        self._notify(message, None, done=True)
        if self.token is None:
            return
        self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
        with contextlib.suppress(KeyError):
            del self.ls.work_done_progress.tokens[self.token]
        self.token = None

    def report(self, message: str, percentage: int | None = None) -> None:
        self._notify(message, percentage, done=False)
        if self.token is not None:
            self.ls.work_done_progress.report(
                self.token, types.WorkDoneProgressReport(message=message, percentage=percentage)
            )

    def event(self, event: Event) -> None:
        """Turns one daemon event into a progress report."""
        progress = self.tracker.update(event.name, event.content)
        if progress is not None:
            self.report(*describe_progress(progress))

    def _notify(self, message: str, percentage: int | None, *, done: bool) -> None:
        self.ls.protocol.notify(PROGRESS_NOTIFICATION, {"id": self.id, "title": self.title, "message": message,
                                                        "percentage": percentage, "done": done})


def describe_progress(progress: Progress) -> tuple[str, int | None]:
    """A report's message and percentage: "attribution (integrated_gradients): 120/400 steps, about 30s left"."""
    if progress.stage == "queued":
        return f"waiting in the daemon's queue: position {progress.queue_position}" + (
            f" of {progress.queue_length}" if progress.queue_length else ""), None
    fraction = progress.fraction
    if fraction is None:
        counted = f": {progress.done} {progress.unit or ''}".rstrip() if progress.done else ""
        return f"{progress.describe()}{counted}", None
    message = f"{progress.describe()}: {progress.done}/{progress.total} {progress.unit or ''}".rstrip()
    if progress.eta_s is not None and progress.done != progress.total:
        message += f", about {progress.eta_s:.0f}s left"
    return message, int(100 * fraction)
