"""Async core of the client: one DEALER socket, many requests in flight, events routed by request id.

A dead daemon never hangs a caller: a lost connection (socket monitor) or silence past the timeout
(liveness pings) fails every pending request at once with DaemonUnavailable, as pytest-lsp does.
Through an SSH tunnel, a dead ssh does the same, and the tunnel is then reopened (tunnel_keeper.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from ecco_protocol.codec import FrameError, encode_message, new_request_header, split_frames
from ecco_protocol.errors import ErrorCode
from ecco_protocol.signing import SignatureError, Signer
from zmq.utils.monitor import recv_monitor_message

from ecco_client.aio.model import AsyncLanguageModel
from ecco_client.aio.request import TERMINAL, Event, EventCallback, RequestStream
from ecco_client.aio.tunnel_keeper import TunnelKeeper, TunnelListener
from ecco_client.aio.watch import watching
from ecco_client.autostart import Autostart, connect_or_start
from ecco_client.credentials import Credentials, resolve_credentials
from ecco_client.exceptions import DaemonUnavailable, EccoError, ProtocolError, SetupError
from ecco_client.progress import ProgressCallback

log = logging.getLogger(__name__)

# While requests are in flight, a message at least this often (PROTOCOL.md §5.3: the daemon's grace is longer).
HEARTBEAT_S = 10.0
TUNNEL_EXIT_GRACE_S = 0.5  # how long a dropped connection waits to see whether the tunnel's ssh is exiting
# A daemon that cannot authenticate us cannot sign its answer; these codes may arrive unsigned.
UNSIGNED_CODES = frozenset({ErrorCode.UNAUTHORIZED.value, ErrorCode.BAD_FRAME.value,
                            ErrorCode.UNSUPPORTED_VERSION.value})
HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                    | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
# Handshakes failed in a row before the daemon counts as refusing this client. One failure without detail
# may be a daemon that died mid-handshake; ZeroMQ retries, and a wrong key fails again (a mismatch of
# mechanisms is final at once: ZeroMQ stops retrying).
REFUSING_AFTER = 2


class AsyncClient:
    """One DEALER connection to a daemon: many requests in flight, each answered by its own events."""

    def __init__(self, credentials: Credentials, timeout: float = 10.0, tunnel: Any = None,
                 progress: bool | None = None) -> None:
        self.credentials = credentials
        self.address = credentials.address
        self.timeout = timeout
        # Progress bars of long requests: None where a notebook or terminal shows them, True, False.
        self.progress = progress
        self._signer = Signer(credentials.key)
        self._context = zmq.asyncio.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        if credentials.server_public_key:
            public, secret = zmq.curve_keypair()
            self._socket.curve_serverkey = credentials.server_public_key.encode("ascii")
            self._socket.curve_publickey = public
            self._socket.curve_secretkey = secret
        self._monitor = self._socket.get_monitor_socket(
            zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | HANDSHAKE_FAILED)
        # Why the last handshake failed, while it stands: ZeroMQ gives up on a mechanism mismatch and
        # then holds sends forever, so requests fail at once with this instead.
        self._refused: DaemonUnavailable | None = None
        self._failed_handshakes = 0  # in a row
        self._socket.connect(self.address)
        self._pending: dict[str, RequestStream] = {}
        self._last_heard = time.monotonic()
        self._last_sent = time.monotonic()
        self._closed = False
        self._tunnel = tunnel
        self._keeper = TunnelKeeper(tunnel, self._tunnel_down, self._tunnel_up) if tunnel is not None else None
        self._errands: set[asyncio.Future[None]] = set()  # background sends, kept from the garbage collector
        self._tasks = [
            asyncio.ensure_future(self._receive_loop()),
            asyncio.ensure_future(self._monitor_loop()),
            asyncio.ensure_future(self._watchdog_loop()),
        ]

    # -- requests -------------------------------------------------------------------------------

    async def request(self, op: str, params: dict[str, Any] | None = None, *,
                      on_event: EventCallback | None = None) -> RequestStream:
        """Sends one request; its events arrive on the returned stream.

        While a lost SSH tunnel is being reopened, waits for it up to the client's timeout first.
        """
        if self._keeper is not None:
            await self._keeper.wait_up(self.timeout)
        if self._closed:
            raise DaemonUnavailable("this client is closed")
        if self._refused is not None:
            raise self._refused
        header = new_request_header(op, self.credentials.user)
        stream = RequestStream(self, header["id"], op, on_event)
        self._pending[stream.request_id] = stream
        if len(self._pending) == 1:
            # Silence is measured from the first outstanding request, not from the last idle period.
            self._last_heard = time.monotonic()
        frames = encode_message(header, {"params": params or {}}, self._signer)
        try:
            # ZeroMQ holds a send while it has no connection to queue on; never longer than the timeout.
            await asyncio.wait_for(self._socket.send_multipart(frames, copy=False), self.timeout)
        except BaseException as exc:
            self._pending.pop(stream.request_id, None)
            if isinstance(exc, asyncio.TimeoutError):
                raise self._refused or DaemonUnavailable(
                    f"could not send to the daemon at {self.address} within {self.timeout}s") from None
            raise
        self._last_sent = time.monotonic()
        return stream

    def _request_in_background(self, op: str, params: dict[str, Any] | None = None) -> None:
        """Sends a request whose answer nobody waits for (a cancel sent by a caller who is leaving)."""
        async def send() -> None:
            with contextlib.suppress(EccoError):
                await self.request(op, params)

        task = asyncio.ensure_future(send())
        self._errands.add(task)
        task.add_done_callback(self._errands.discard)

    async def call(self, op: str, params: dict[str, Any] | None = None, *,
                   on_event: EventCallback | None = None) -> dict[str, Any]:
        """Sends one request and waits for its result; cancelling the wait cancels the daemon's job."""
        async with await self.request(op, params, on_event=on_event) as stream:
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

    async def load_model(self, model: str, *, on_progress: ProgressCallback | None = None,
                         progress: bool | None = None, **options: Any) -> dict[str, Any]:
        """Load a model on the daemon (admin); ``on_progress`` and ``progress`` as for ``analyze``."""
        show = self.progress if progress is None else progress
        with watching("load", on_progress, show) as on_event:
            return (await self.call("models.load", {"model": model, **options}, on_event=on_event))["model"]

    def model(self, name: str | None = None) -> AsyncLanguageModel:
        """A model on this daemon by name (or alias); None: the daemon's default model."""
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
        if self._keeper is not None:
            await self._keeper.close()
        if self._errands:  # a cancel just sent by a caller who left: let it go out first, briefly
            await asyncio.wait(self._errands, timeout=min(1.0, self.timeout))
        tasks = [*self._tasks, *self._errands]
        for task in tasks:
            task.cancel()
        for task in tasks:
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
            if message["event"] & HANDSHAKE_FAILED:
                self._failed_handshakes += 1
                mismatch = (message["event"] == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                            and message["value"] == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
                if mismatch or self._failed_handshakes >= REFUSING_AFTER:
                    self._refused = self._handshake_refusal(mismatch)
                    self._fail_pending(self._refused)
            elif message["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._refused, self._failed_handshakes = None, 0
            elif message["event"] == zmq.EVENT_DISCONNECTED:
                if self._keeper is not None and not await self._tunnel_survives():
                    # The tunnel's ssh died: mark it down now, before a caller can send on the dead port
                    # (its own exit report may come later); this fails the pending requests with ssh's words.
                    self._keeper.notice_exit()
                elif not self._failed_handshakes:
                    # (A connection whose handshake failed was never up: ZeroMQ retries, requests stay queued,
                    # and a second failure refuses them above.)
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
            elif busy and (silent > self.timeout / 2 or time.monotonic() - self._last_sent > HEARTBEAT_S):
                # A ping tells a busy daemon from a dead one, and is our heartbeat: a daemon cancels the jobs
                # of a client it has not heard from for its grace period (PROTOCOL.md §5.3).
                with contextlib.suppress(EccoError):
                    await self.request("ping")

    async def _tunnel_survives(self) -> bool:
        """Whether the tunnel's ssh is alive, given a moment to exit: a killed ssh closes its port a moment
        before it can be reaped, and a drop seen in that moment is the tunnel's death, not the daemon's."""
        assert self._tunnel is not None
        deadline = time.monotonic() + TUNNEL_EXIT_GRACE_S
        while self._tunnel.alive and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self._tunnel.alive

    def _handshake_refusal(self, mismatch: bool) -> DaemonUnavailable:
        """Why the daemon and this client could not agree on security, in terms a user can act on."""
        if not self.credentials.server_public_key:
            # Whatever ZeroMQ reports (a mismatch, or a connection the daemon closed mid-handshake).
            why = ("the daemon requires CURVE encryption; connect with a connection file that holds its "
                   "server_public_key (`ecco-daemon user add NAME` writes one)")
        elif mismatch:
            why = "the daemon does not use CURVE encryption, but this connection gives a server public key"
        else:
            # ZeroMQ reports no detail for a wrong key, nor at times for a daemon without CURVE.
            why = ("the CURVE handshake failed: the server_public_key in this connection is not the daemon's "
                   "(was its state folder replaced?), or the daemon does not use CURVE encryption")
        return DaemonUnavailable(f"cannot connect to the daemon at {self.address}: {why}")

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

    @property
    def tunnel_up(self) -> bool:
        """False while a lost SSH tunnel is being reopened; True without a tunnel."""
        return self._keeper is None or self._keeper.up

    def watch_tunnel(self, listener: TunnelListener) -> Callable[[], None]:
        """Calls ``listener`` with each change of the SSH tunnel (down with ssh's words, then back up);
        returns a function that stops the calls. Without a tunnel it is never called."""
        if self._keeper is None:
            return lambda: None
        return self._keeper.watch(listener)

    def _tunnel_down(self, error: DaemonUnavailable) -> None:
        # ZeroMQ would keep dialling the dead port, which anyone on this host could take meanwhile.
        with contextlib.suppress(zmq.ZMQError):
            self._socket.disconnect(self.address)
        self._fail_pending(error)

    def _tunnel_up(self, address: str) -> None:
        self.address = address
        self.credentials = replace(self.credentials, address=address)
        self._last_heard = time.monotonic()
        self._socket.connect(address)

    def _fail_pending(self, exc: DaemonUnavailable) -> None:
        pending, self._pending = self._pending, {}
        for stream in pending.values():
            stream._fail(exc)


async def connect(address: str | None = None, *, key: str | None = None, user: str | None = None,
                  connection_file: str | Path | None = None, timeout: float = 10.0,
                  ssh: str | None = None, ssh_options: dict[str, Any] | None = None,
                  autostart: bool | Autostart = False, progress: bool | None = None) -> AsyncClient:
    """Connect to a daemon and check that it answers (DaemonUnavailable otherwise).

    With no arguments, the local daemon's connection file gives the address and key.

    ``progress``: tqdm bars for long requests; None (default) where a notebook or a terminal shows them
    (and $ECCO_PROGRESS is not 0), False never, True always. Each call's ``progress=`` overrides it.

    ``autostart``: when no local daemon answers, start a private one for this process (stopped when it
    exits); True loads the daemon's default model, ``Autostart([...])`` chosen models.
    """
    if autostart and address is None and key is None and ssh is None:
        options = autostart if isinstance(autostart, Autostart) else Autostart()
        started = await connect_or_start(connect, options, connection_file=connection_file, user=user,
                                         timeout=timeout)
        started.progress = progress
        return started
    credentials = resolve_credentials(address, key, user, connection_file)
    tunnel = None
    if ssh is not None:
        from ecco_client.ssh_tunnel import SshTunnel

        # Opening waits for ssh (up to its timeout): off the event loop, so other work keeps going.
        try:
            tunnel = await asyncio.to_thread(SshTunnel, ssh, credentials.address, **(ssh_options or {}))
        except ValueError as exc:  # a target, option or address that no tunnel can take
            raise SetupError(f"cannot open an SSH tunnel to {credentials.address} through {ssh}: {exc}",
                             ("address", "connection_file", "ssh")) from None
        credentials = Credentials(tunnel.local_address, credentials.user, credentials.key,
                                  credentials.server_public_key)
    client = AsyncClient(credentials, timeout=timeout, tunnel=tunnel, progress=progress)
    try:
        await client.wait_ready()
    except BaseException:
        await client.close()
        raise
    return client
