"""Async core of the client: one DEALER socket, many requests in flight, events routed by request id.

A dead daemon never hangs a caller: a lost connection (socket monitor) or silence past the timeout
(liveness pings) fails every pending request at once with DaemonUnavailable, as pytest-lsp does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from ecco_protocol.codec import FrameError, encode_message, new_request_header, split_frames
from ecco_protocol.errors import ErrorCode
from ecco_protocol.signing import SignatureError, Signer
from zmq.utils.monitor import recv_monitor_message

from ecco_client.credentials import Credentials, resolve_credentials
from ecco_client.exceptions import DaemonUnavailable, EccoError, ProtocolError, error_from_reply

log = logging.getLogger(__name__)

TERMINAL = frozenset({"result", "error"})
# A daemon that cannot authenticate us cannot sign its answer; these codes may arrive unsigned.
UNSIGNED_CODES = frozenset({ErrorCode.UNAUTHORIZED.value, ErrorCode.BAD_FRAME.value,
                            ErrorCode.UNSUPPORTED_VERSION.value})


@dataclass(frozen=True)
class Event:
    request_id: str
    name: str  # accepted | queued | progress | token | result | error
    content: dict[str, Any]


class RequestStream:
    """The events of one request. Iterate for the non-terminal ones; ``await result()`` for the answer."""

    def __init__(self, client: AsyncClient, request_id: str, op: str,
                 on_event: Callable[[Event], None] | None) -> None:
        self.client = client
        self.request_id = request_id
        self.op = op
        self.on_event = on_event
        self._queue: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        self._result: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        # A caller may never ask for the outcome (fire and forget); that is not worth a warning at exit.
        self._result.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.last_queue_position: int | None = None

    def _deliver(self, event: Event) -> None:
        if self._result.done():
            return
        if event.name == "queued":
            self.last_queue_position = event.content.get("position")
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


class AsyncClient:
    def __init__(self, credentials: Credentials, timeout: float = 10.0, tunnel: Any = None) -> None:
        self.credentials = credentials
        self.address = credentials.address
        self.timeout = timeout
        self._signer = Signer(credentials.key)
        self._context = zmq.asyncio.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        if credentials.server_public_key:
            public, secret = zmq.curve_keypair()
            self._socket.curve_serverkey = credentials.server_public_key.encode("ascii")
            self._socket.curve_publickey = public
            self._socket.curve_secretkey = secret
        self._monitor = self._socket.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        self._socket.connect(self.address)
        self._pending: dict[str, RequestStream] = {}
        self._last_heard = time.monotonic()
        self._closed = False
        self._tunnel = tunnel
        self._tasks = [
            asyncio.ensure_future(self._receive_loop()),
            asyncio.ensure_future(self._monitor_loop()),
            asyncio.ensure_future(self._watchdog_loop()),
        ]

    # -- requests -------------------------------------------------------------------------------

    async def request(self, op: str, params: dict[str, Any] | None = None, *,
                      on_event: Callable[[Event], None] | None = None) -> RequestStream:
        if self._closed:
            raise DaemonUnavailable("this client is closed")
        header = new_request_header(op, self.credentials.user)
        stream = RequestStream(self, header["id"], op, on_event)
        self._pending[stream.request_id] = stream
        if len(self._pending) == 1:
            # Silence is measured from the first outstanding request, not from the last idle period.
            self._last_heard = time.monotonic()
        frames = encode_message(header, {"params": params or {}}, self._signer)
        await self._socket.send_multipart(frames, copy=False)
        return stream

    async def call(self, op: str, params: dict[str, Any] | None = None, *,
                   on_event: Callable[[Event], None] | None = None) -> dict[str, Any]:
        stream = await self.request(op, params, on_event=on_event)
        return await stream.result()

    async def ping(self) -> float:
        """Round trip in seconds."""
        start = time.perf_counter()
        await self.call("ping")
        return time.perf_counter() - start

    async def status(self) -> dict[str, Any]:
        return await self.call("status")

    async def list_models(self) -> list[dict[str, Any]]:
        return (await self.call("models.list"))["models"]

    async def load_model(self, model: str, **options: Any) -> dict[str, Any]:
        return (await self.call("models.load", {"model": model, **options}))["model"]

    def model(self, name: str | None = None) -> Any:
        from ecco_client.model import AsyncLanguageModel

        return AsyncLanguageModel(self, name)

    async def wait_ready(self) -> None:
        """Ping until answered or the timeout passes: proves something is listening and accepts our key."""
        try:
            await asyncio.wait_for(self.ping(), timeout=self.timeout)
        except asyncio.TimeoutError:
            self._fail_pending(DaemonUnavailable(f"no daemon answered at {self.address} within {self.timeout}s"))
            raise DaemonUnavailable(f"no daemon answered at {self.address} within {self.timeout}s") from None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._fail_pending(DaemonUnavailable("the client was closed"))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._socket.disable_monitor()
        self._monitor.close(linger=0)
        self._socket.close(linger=0)
        if self._tunnel is not None:
            self._tunnel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- background tasks -----------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            frames = await self._socket.recv_multipart(copy=True)
            self._last_heard = time.monotonic()
            try:
                event = self._decode(frames)
            except (FrameError, SignatureError, ProtocolError) as exc:
                log.warning("dropped an unreadable reply: %s", exc)
                continue
            stream = self._pending.get(event.request_id)
            if stream is None:
                continue
            stream._deliver(event)
            if event.name in TERMINAL:
                self._pending.pop(event.request_id, None)

    def _decode(self, frames: list[bytes]) -> Event:
        raw = split_frames(frames)
        header = raw.header()
        name = header.get("event")
        request_id = header.get("id")
        if not isinstance(name, str) or not isinstance(request_id, str):
            raise ProtocolError(f"reply header lacks event or id: {header}")
        if raw.signature:
            self._signer.verify(raw.signature, raw.signed_frames)
            return Event(request_id, name, raw.content())
        content = raw.content()
        if name == "error" and content.get("code") in UNSIGNED_CODES:
            return Event(request_id, name, content)
        raise ProtocolError("unsigned reply")

    async def _monitor_loop(self) -> None:
        while True:
            message = await recv_monitor_message(self._monitor)
            if message["event"] == zmq.EVENT_DISCONNECTED:
                self._fail_pending(self._lost_connection())

    async def _watchdog_loop(self) -> None:
        interval = max(0.05, min(1.0, self.timeout / 4))
        while True:
            await asyncio.sleep(interval)
            busy = [s for s in self._pending.values() if s.op != "ping"]
            if not self._pending:
                continue
            silent = time.monotonic() - self._last_heard
            if silent > self.timeout:
                self._fail_pending(DaemonUnavailable(
                    f"the daemon at {self.address} has been silent for {silent:.1f}s (timeout {self.timeout}s)"))
            elif busy and silent > self.timeout / 2:
                # Long jobs are quiet; a ping tells a busy daemon from a dead one.
                with contextlib.suppress(EccoError):
                    await self.request("ping")

    def _lost_connection(self) -> DaemonUnavailable:
        """Why the connection dropped; through a tunnel, ssh's own words when the tunnel died."""
        if self._tunnel is not None and not self._tunnel.alive:
            try:
                self._tunnel.check()
            except DaemonUnavailable as exc:
                return exc
        return DaemonUnavailable(f"lost the connection to the daemon at {self.address}")

    @property
    def tunnel(self) -> Any:
        """The SSH tunnel this client opened (``connect(..., ssh=...)``), or None."""
        return self._tunnel

    def _fail_pending(self, exc: DaemonUnavailable) -> None:
        pending, self._pending = self._pending, {}
        for stream in pending.values():
            stream._fail(exc)


async def connect(address: str | None = None, *, key: str | None = None, user: str | None = None,
                  connection_file: str | Path | None = None, timeout: float = 10.0,
                  ssh: str | None = None, ssh_options: dict[str, Any] | None = None) -> AsyncClient:
    """Connect and check that a daemon answers; raises DaemonUnavailable when none does."""
    credentials = resolve_credentials(address, key, user, connection_file)
    tunnel = None
    if ssh is not None:
        from ecco_client.ssh_tunnel import SshTunnel

        # Opening waits for ssh (up to its timeout): off the event loop, so other work keeps going.
        tunnel = await asyncio.to_thread(SshTunnel, ssh, credentials.address, **(ssh_options or {}))
        credentials = Credentials(tunnel.local_address, credentials.user, credentials.key,
                                  credentials.server_public_key)
    client = AsyncClient(credentials, timeout=timeout, tunnel=tunnel)
    try:
        await client.wait_ready()
    except BaseException:
        await client.close()
        raise
    return client
