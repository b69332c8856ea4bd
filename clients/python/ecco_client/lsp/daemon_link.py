"""The language server's one connection to the daemon: connects lazily, watches it, reconnects.

Why: the daemon may restart (a new process, maybe a new port in a rewritten connection file) or be
unreachable while the editor keeps running. A heartbeat ping notices a lost daemon while idle; a
reconnect loop reads the settings and the connection file anew until a daemon answers. Every change
is reported as a status (the extension's `ecco/status`), and each outage is announced once. A client
that lost its SSH tunnel reopens it itself; the link reports that outage and return the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from ecco_client.aio.client import AsyncClient
from ecco_client.aio.client import connect as aconnect
from ecco_client.aio.tunnel_keeper import TunnelState
from ecco_client.exceptions import DaemonUnavailable, EccoError
from ecco_client.lsp.settings import Settings

log = logging.getLogger(__name__)

HEARTBEAT_S = float(os.environ.get("ECCO_LSP_HEARTBEAT_S", "2.0"))
CONNECT_TIMEOUT_S = float(os.environ.get("ECCO_LSP_CONNECT_TIMEOUT_S", "5.0"))
RETRY_MIN_S = 0.25
RETRY_MAX_S = float(os.environ.get("ECCO_LSP_RETRY_MAX_S", "5.0"))


@dataclass(frozen=True)
class DaemonStatus:
    """The extension's DaemonStatus (clients/vscode/shared/protocol.ts)."""

    connected: bool
    address: str | None = None
    model: str | None = None
    queue_position: int | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "address": self.address,
            "model": self.model,
            "queuePosition": self.queue_position,
            "message": self.message,
        }


StatusListener = Callable[[DaemonStatus], None]
OutageListener = Callable[[str], None]


class DaemonLink:
    """Owns the AsyncClient. ``await link.client()`` gives a connected one or raises DaemonUnavailable."""

    def __init__(
        self,
        settings: Settings,
        on_status: StatusListener,
        on_outage: OutageListener,
        connect: Callable[[Settings], Awaitable[AsyncClient]] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.settings = settings
        self._on_error = on_error or (lambda exc: None)
        self._on_status = on_status
        self._on_outage = on_outage
        self._connect_fn = connect or connect_with
        self._client: AsyncClient | None = None
        self._lock = asyncio.Lock()
        self._status = DaemonStatus(connected=False, message="not connected yet")
        self._announced_outage = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def status(self) -> DaemonStatus:
        return self._status

    def start(self) -> None:
        """Connects in the background; failures only start the reconnect loop."""
        self._ensure_reconnecting()

    async def update_settings(self, settings: Settings) -> None:
        """New settings; a new target (address, file, key, ssh host) means a new connection."""
        old, self.settings = self.settings, settings
        if old.connection != settings.connection:
            await self._drop("the connection settings changed")
            self._announced_outage = False
            self._ensure_reconnecting()
        elif old.model != settings.model:
            self._set_status(replace(self._status, model=settings.model))

    async def client(self) -> AsyncClient:
        """A connected client, connecting now if needed (the next request after a restart reconnects)."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                await self._connect_once()
        assert self._client is not None
        return self._client

    def lost(self, error: BaseException, client: AsyncClient | None = None) -> None:
        """A request (on ``client``, default the current one) found the daemon gone: drop that client
        and start reconnecting. A client replaced meanwhile is left alone."""
        if self._client is None or (client is not None and client is not self._client):
            return
        if not self._client.tunnel_up:  # the client reopens its tunnel and tells us (_tunnel_changed)
            self._report_unreachable(str(error))
            return
        client, self._client = self._client, None
        asyncio.ensure_future(_close_quietly(client))
        self._report_unreachable(str(error))
        self._ensure_reconnecting()

    def set_model(self, name: str) -> None:
        """The daemon's name for the model in use (the setting may be a path or an alias)."""
        if self._status.connected and self._status.model != name:
            self._set_status(replace(self._status, model=name))

    def set_queue_position(self, position: int | None) -> None:
        if self._status.connected and self._status.queue_position != position:
            self._set_status(replace(self._status, queue_position=position))

    async def close(self) -> None:
        self._closed = True
        for task in (self._reconnect_task, self._heartbeat_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._drop("the language server is shutting down", report=False)

    # ------------------------------------------------------------------------------------ internals

    async def _connect_once(self) -> None:
        try:
            client = await self._connect_fn(self.settings)
        except (
            Exception
        ) as exc:  # a bad connection file (JSON, fields) is as fatal to connecting as no daemon
            self._report_unreachable(str(exc) or type(exc).__name__)
            self._ensure_reconnecting()
            raise DaemonUnavailable(unreachable_message(self.settings, str(exc))) from exc
        self._client = client
        client.watch_tunnel(functools.partial(self._tunnel_changed, client))
        self._report_connected(client)
        if self._heartbeat_task is None or self._heartbeat_task.done():
            self._heartbeat_task = asyncio.ensure_future(self._guarded(self._heartbeat))

    def _report_connected(self, client: AsyncClient) -> None:
        was_announced, self._announced_outage = self._announced_outage, False
        message = "reconnected" if was_announced else "connected"
        self._set_status(
            DaemonStatus(connected=True, address=client.address, model=self.settings.model, message=message)
        )
        log.info("%s to the daemon at %s", message, client.address)

    def _tunnel_changed(self, client: AsyncClient, state: TunnelState) -> None:
        """The client lost or reopened its SSH tunnel: shown as a lost daemon and a reconnection are."""
        if client is not self._client:
            return
        if state.up:
            self._report_connected(client)
        else:
            self._report_unreachable(state.message)

    def _ensure_reconnecting(self) -> None:
        if self._closed or (self._reconnect_task is not None and not self._reconnect_task.done()):
            return
        self._reconnect_task = asyncio.ensure_future(self._guarded(self._reconnect_loop))

    async def _guarded(self, loop: Callable[[], Awaitable[None]]) -> None:
        """Runs a background loop; a bug in it belongs to no request, so it is reported, not lost."""
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("the daemon link's background task failed")
            self._on_error(exc)

    async def _reconnect_loop(self) -> None:
        delay = RETRY_MIN_S
        while not self._closed and self._client is None:
            try:
                await self.client()
                return
            except DaemonUnavailable:
                await asyncio.sleep(delay)  # back-off between attempts, not a wait for an outcome
                delay = min(delay * 2, RETRY_MAX_S)

    async def _heartbeat(self) -> None:
        """Pings while connected, so a daemon lost while nothing runs is noticed and reported."""
        while not self._closed:
            await asyncio.sleep(HEARTBEAT_S)
            client = self._client
            if client is None or not client.tunnel_up:  # a reopening tunnel reports its own return
                continue
            try:
                await asyncio.wait_for(client.ping(), timeout=max(CONNECT_TIMEOUT_S, HEARTBEAT_S))
            except (EccoError, asyncio.TimeoutError) as exc:
                self.lost(
                    exc if str(exc) else DaemonUnavailable("the daemon stopped answering pings"), client
                )

    async def _drop(self, why: str, report: bool = True) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _close_quietly(client)
        if report:
            self._set_status(
                DaemonStatus(connected=False, address=None, model=self.settings.model, message=why)
            )

    def _report_unreachable(self, detail: str) -> None:
        message = unreachable_message(self.settings, detail)
        self._set_status(
            DaemonStatus(connected=False, address=None, model=self.settings.model, message=message)
        )
        if not self._announced_outage:
            self._announced_outage = True
            log.warning("%s", message)
            self._on_outage(message)

    def _set_status(self, status: DaemonStatus) -> None:
        if status != self._status:
            self._status = status
            self._on_status(status)


def unreachable_message(settings: Settings, detail: str) -> str:
    return f"cannot reach the Ecco daemon ({settings.describe_target()}): {detail}"


async def connect_with(settings: Settings) -> AsyncClient:
    """Connects as the settings say: a connection file wins over the address and the key. The client
    opens any SSH tunnel off the event loop, so the editor's requests keep being answered meanwhile."""
    return await aconnect(
        None if settings.connection_file else settings.daemon_address,
        key=None if settings.connection_file else (settings.user_key or None),
        connection_file=settings.connection_file or None,
        timeout=CONNECT_TIMEOUT_S,
        ssh=settings.ssh_host or None,
    )


async def _close_quietly(client: AsyncClient) -> None:
    with contextlib.suppress(Exception):
        await client.close()
