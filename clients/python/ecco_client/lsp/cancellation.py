"""Makes ``$/cancelRequest`` reach a running ``workspace/executeCommand``.

Why: pygls runs a command's coroutine as a task of its own, under an internal id, behind the
executeCommand request; cancelling the request answers the client but leaves that task running (and
the daemon job with it). This protocol remembers which request each command task serves, and cancels
the task when the client cancels the request; the command's ``finally`` then cancels the daemon job.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

from pygls.protocol import LanguageServerProtocol

log = logging.getLogger(__name__)

# The JSON-RPC id of the client request being handled; copied into the tasks that serve it.
current_request_id: contextvars.ContextVar[int | str | None] = contextvars.ContextVar(
    "ecco_lsp_request_id", default=None
)


class CancellableProtocol(LanguageServerProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tasks_by_request: dict[int | str, set[asyncio.Task[Any]]] = {}
        self._response_waiters: dict[int | str, asyncio.Future[None]] = {}

    def _handle_request(self, msg_id: Any, method_name: str, params: Any) -> None:
        token = current_request_id.set(msg_id)
        try:
            super()._handle_request(msg_id, method_name, params)
        finally:
            current_request_id.reset(token)

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        super()._handle_cancel_notification(msg_id)
        for task in self._tasks_by_request.pop(msg_id, set()):
            if not task.done():
                log.info("request %s cancelled by the client; cancelling its work", msg_id)
                task.cancel()

    def _send_response(self, msg_id: Any, result: Any | None = None, error: Any | None = None) -> None:
        super()._send_response(msg_id, result, error)
        waiter = self._response_waiters.pop(msg_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def response_sent(self, msg_id: int | str) -> asyncio.Future[None]:
        """Resolves once the answer to the client's request ``msg_id`` is written; ask before it is."""
        waiter = self._response_waiters.get(msg_id)
        if waiter is None:
            waiter = asyncio.get_running_loop().create_future()
            self._response_waiters[msg_id] = waiter
        return waiter

    def track_current_task(self) -> None:
        """Called from inside a command: its task is cancelled with the request that started it."""
        msg_id = current_request_id.get()
        task = asyncio.current_task()
        if msg_id is None or task is None:
            return
        tasks = self._tasks_by_request.setdefault(msg_id, set())
        tasks.add(task)

        def forget(done: asyncio.Task[Any]) -> None:
            remaining = self._tasks_by_request.get(msg_id)
            if remaining is not None:
                remaining.discard(done)
                if not remaining:
                    self._tasks_by_request.pop(msg_id, None)

        task.add_done_callback(forget)
