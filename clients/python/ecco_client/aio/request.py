"""One request's events, routed to it by the client's receiver: iterate them, then await the result."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ecco_client.exceptions import error_from_reply

log = logging.getLogger(__name__)

TERMINAL = frozenset({"result", "error"})


@dataclass(frozen=True)
class Event:
    request_id: str
    name: str  # accepted | queued | progress | token | result | error
    content: dict[str, Any]


EventCallback = Callable[[Event], None]


class Requester(Protocol):
    """What a request and a model need from the client: sending a request, and waiting for an answer."""

    async def request(self, op: str, params: dict[str, Any] | None = None, *,
                      on_event: EventCallback | None = None) -> RequestStream: ...

    async def call(self, op: str, params: dict[str, Any] | None = None, *,
                   on_event: EventCallback | None = None) -> dict[str, Any]: ...

    def _request_in_background(self, op: str, params: dict[str, Any] | None = None) -> None: ...


class RequestStream:
    """The events of one request. Iterate for the non-terminal ones; ``await result()`` for the answer.

    ``async with`` it to scope the request: leaving the block early (an error, a cancelled task, Ctrl-C
    in a blocking caller) asks the daemon to cancel the job.
    """

    def __init__(self, client: Requester, request_id: str, op: str, on_event: EventCallback | None) -> None:
        self.client = client
        self.request_id = request_id
        self.op = op
        self.on_event = on_event
        self._queue: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        self._result: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        # A caller may never ask for the outcome (fire and forget); that is not worth a warning at exit.
        self._result.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _deliver(self, event: Event) -> None:
        if self._result.done():
            return
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a faulty callback must not break the receiver
                log.exception("on_event callback failed")
        if event.name == "result":
            self._result.set_result(event.content)
        elif event.name == "error":
            self._result.set_exception(error_from_reply(event.content))
        self._queue.put_nowait(event)

    def _fail(self, exc: BaseException) -> None:
        if not self._result.done():
            self._result.set_exception(exc)
            self._queue.put_nowait(exc)

    @property
    def done(self) -> bool:
        return self._result.done()

    async def result(self) -> dict[str, Any]:
        return await asyncio.shield(self._result)

    async def events(self) -> AsyncIterator[Event]:
        """Non-terminal events in order; ends after the result, raises on an error."""
        while True:
            item = await self._queue.get()
            if isinstance(item, BaseException):
                raise item
            if item.name == "error":
                raise error_from_reply(item.content)
            if item.name == "result":
                return
            yield item

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    async def cancel(self) -> dict[str, Any]:
        return await self.client.call("cancel", {"target": self.request_id})

    async def __aenter__(self) -> RequestStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        if exc_type is not None and not self.done:
            # Sent, not awaited: the caller is leaving (maybe cancelled) and must not wait on the daemon,
            # nor on a send that ZeroMQ holds while it has no connection.
            self.client._request_in_background("cancel", {"target": self.request_id})
