"""The blocking client: the async core on a private event loop thread.

A private loop keeps the client usable inside Jupyter, whose own loop is already running.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from ecco_client.aio.client import AsyncClient, Event, RequestStream
from ecco_client.aio.client import connect as aconnect

T = TypeVar("T")
_DONE = object()


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="ecco-client-loop", daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


class RequestHandle:
    """One request seen from a blocking caller: iterate its events, then take its result."""

    def __init__(self, client: Client, stream: RequestStream, events: queue.Queue[Any]) -> None:
        self._client = client
        self.stream = stream
        self._events = events

    @property
    def request_id(self) -> str:
        return self.stream.request_id

    def events(self) -> Iterator[Event]:
        """Non-terminal events as they arrive; a daemon error or a lost daemon raises here."""
        while True:
            item = self._events.get()
            if item is _DONE:
                break
            yield item
        self.result()

    def result(self) -> dict[str, Any]:
        future = self._client._loop.submit(self.stream.result())
        try:
            return future.result()
        except KeyboardInterrupt:
            self.cancel()
            raise

    def cancel(self) -> dict[str, Any]:
        return self._client._loop.run(self.stream.cancel())


class Client:
    def __init__(self, loop: LoopThread, inner: AsyncClient) -> None:
        self._loop = loop
        self.inner = inner

    @property
    def address(self) -> str:
        return self.inner.address

    @property
    def tunnel(self) -> Any:
        """The SSH tunnel this client opened (``connect(..., ssh=...)``), or None."""
        return self.inner.tunnel

    def request(self, op: str, params: dict[str, Any] | None = None) -> RequestHandle:
        events: queue.Queue[Any] = queue.Queue()

        def on_event(event: Event) -> None:
            if event.name in ("result", "error"):
                events.put(_DONE)
            else:
                events.put(event)

        async def start() -> RequestStream:
            stream = await self.inner.request(op, params, on_event=on_event)
            # A lost daemon fails the stream without an event: wake the iterator too.
            stream._result.add_done_callback(lambda _: events.put(_DONE))
            return stream

        return RequestHandle(self, self._loop.run(start()), events)

    def call(self, op: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.request(op, params).result()

    def ping(self) -> float:
        return self._loop.run(self.inner.ping())

    def status(self) -> dict[str, Any]:
        return self.call("status")

    def list_models(self) -> list[dict[str, Any]]:
        return self.call("models.list")["models"]

    def load_model(self, model: str, **options: Any) -> dict[str, Any]:
        return self.call("models.load", {"model": model, **options})["model"]

    def model(self, name: str | None = None) -> Any:
        from ecco_client.model import LanguageModel

        return LanguageModel(self, name)

    def close(self) -> None:
        try:
            self._loop.run(self.inner.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(address: str | None = None, *, key: str | None = None, user: str | None = None,
            connection_file: str | Path | None = None, timeout: float = 10.0, ssh: str | None = None,
            ssh_options: dict[str, Any] | None = None) -> Client:
    """Connect to a daemon and check that it answers (DaemonUnavailable otherwise).

    With no arguments, the local daemon's connection file gives the address and key.
    """
    loop = LoopThread()
    try:
        inner = loop.run(aconnect(address, key=key, user=user, connection_file=connection_file,
                                  timeout=timeout, ssh=ssh, ssh_options=ssh_options))
    except BaseException:
        loop.stop()
        raise
    return Client(loop, inner)

