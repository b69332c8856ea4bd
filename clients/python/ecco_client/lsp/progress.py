"""Server-initiated ``$/progress`` for the daemon work a command waits on: queueing, model loading,
analysis and generation, fed by the daemon's queued/progress/token events."""

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

log = logging.getLogger(__name__)


def client_supports_progress(ls: LanguageServer) -> bool:
    window = ls.client_capabilities.window if ls.client_capabilities else None
    return bool(window and window.work_done_progress)


class WorkProgress:
    """One work-done progress: ``async with WorkProgress(ls, "Analyzing") as p: p.event(e)``.

    A no-op where the client did not announce window.workDoneProgress. When the user cancels the
    progress in the editor, ``on_cancel`` runs (the caller cancels the daemon job there).
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
        self.total_tokens = total_tokens
        self.token: str | None = None
        self.tokens_seen = 0

    async def __aenter__(self) -> WorkProgress:
        if not client_supports_progress(self.ls):
            return self
        token = f"ecco-{uuid.uuid4().hex}"
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
        if self.token is None:
            return
        if exc_type is None:
            message = "done"
        elif issubclass(exc_type, asyncio.CancelledError):
            message = "cancelled"
        else:
            message = f"failed: {exc}"
        self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
        with contextlib.suppress(KeyError):
            del self.ls.work_done_progress.tokens[self.token]
        self.token = None

    def report(self, message: str, percentage: int | None = None) -> None:
        if self.token is not None:
            self.ls.work_done_progress.report(
                self.token, types.WorkDoneProgressReport(message=message, percentage=percentage)
            )

    def event(self, event: Event) -> None:
        """Turns one daemon event into a progress report."""
        described = describe_event(event, self)
        if described is not None:
            self.report(*described)


def describe_event(event: Event, progress: WorkProgress) -> tuple[str, int | None] | None:
    content = event.content
    if event.name == "queued":
        position, length = content.get("position"), content.get("queue_length")
        of = f" of {length}" if length else ""
        return f"waiting in the daemon's queue: position {position}{of}", None
    if event.name == "progress":
        stage = str(content.get("stage", "working"))
        done, total = content.get("done"), content.get("total")
        if isinstance(done, (int, float)) and isinstance(total, (int, float)) and total > 0:
            return f"{stage}: {done}/{total}", int(100 * min(1.0, done / total))
        return stage, None
    if event.name == "token":
        progress.tokens_seen += 1
        if progress.total_tokens > 0:
            return (
                f"generating: {progress.tokens_seen}/{progress.total_tokens} tokens",
                int(100 * min(1.0, progress.tokens_seen / progress.total_tokens)),
            )
        return f"generating: {progress.tokens_seen} tokens", None
    return None
