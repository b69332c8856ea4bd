"""One daemon request as a command waits on it: progress reported, queue position shown in the status,
the daemon job cancelled when the command is, and a lost daemon reported to the link."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ecco_client.aio.client import AsyncClient
from ecco_client.aio.request import Event
from ecco_client.exceptions import DaemonUnavailable, EccoError
from ecco_client.lsp.daemon_link import DaemonLink
from ecco_client.lsp.errors import command_failure
from ecco_client.lsp.progress import WorkProgress

log = logging.getLogger(__name__)
CANCEL_TIMEOUT_S = 5.0


async def run_job(
    link: DaemonLink,
    op: str,
    params: dict[str, Any],
    progress: WorkProgress | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> dict[str, Any]:
    """Sends ``op`` and waits for its result; raises CommandFailed with a sentence for the user.

    A request that a lost daemon never answered at all (not even "accepted") is sent once more after
    reconnecting: after a daemon restart, the next command works even before the heartbeat noticed.
    """
    heard = False

    def observe(event: Event) -> None:
        nonlocal heard
        heard = True
        if event.name == "queued":
            link.set_queue_position(event.content.get("position"))
        elif event.name in ("progress", "token", "result", "error"):
            link.set_queue_position(None)
        if progress is not None:
            progress.event(event)
        if on_event is not None:
            on_event(event)

    try:
        for attempt in (1, 2):
            client = await link.client()  # failing to connect is final: the link already retries
            try:
                return await _send(client, op, params, observe)
            except DaemonUnavailable as exc:
                link.lost(exc, client)
                if heard or attempt == 2:
                    raise
                log.info("%s found the daemon gone before it answered; reconnecting to send it again", op)
        raise AssertionError("unreachable")
    except EccoError as exc:
        raise command_failure(exc) from exc
    finally:
        link.set_queue_position(None)


async def _send(
    client: AsyncClient, op: str, params: dict[str, Any], observe: Callable[[Event], None]
) -> dict:
    stream = None
    try:
        stream = await client.request(op, params, on_event=observe)
        return await stream.result()
    except asyncio.CancelledError:
        if stream is not None and not stream.done:
            await _cancel_quietly(stream)
        raise


async def _cancel_quietly(stream: Any) -> None:
    """Asks the daemon to drop the job; the command is already cancelled, so failures only get logged."""
    try:
        await asyncio.wait_for(asyncio.shield(stream.cancel()), timeout=CANCEL_TIMEOUT_S)
        log.info("cancelled daemon request %s", stream.request_id)
    except (EccoError, asyncio.TimeoutError) as exc:
        log.warning("could not cancel daemon request %s: %s", stream.request_id, exc)
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(stream.result(), timeout=CANCEL_TIMEOUT_S)


async def call(link: DaemonLink, op: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A control operation (models.list, status…): one answer, no progress."""
    return await run_job(link, op, params or {})
