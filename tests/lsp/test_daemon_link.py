"""The server's daemon link in process, with real sockets: a request the daemon never answered is sent
again after reconnecting, and an unreachable daemon is announced once however often it is retried."""

from __future__ import annotations

import socket
from dataclasses import replace

from ecco_client.aio.client import AsyncClient
from ecco_client.credentials import resolve_credentials
from ecco_client.lsp.daemon_calls import run_job
from ecco_client.lsp.daemon_link import DaemonLink, DaemonStatus
from ecco_client.lsp.errors import CommandFailed
from ecco_client.lsp.settings import Settings
from tests.daemon_process import DaemonProcess


def dead_address() -> str:
    """A loopback port the OS just handed out and nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


async def test_a_request_lost_with_the_daemon_is_sent_again_after_reconnecting(daemon: DaemonProcess) -> None:
    settings = Settings(connection_file=str(daemon.connection_file))
    real = resolve_credentials(None, None, None, daemon.connection_file)
    connects: list[str] = []

    async def connect(_: Settings) -> AsyncClient:
        # First the daemon as it was before a restart (its old port, now dead), then the new one.
        address = dead_address() if not connects else real.address
        connects.append(address)
        return AsyncClient(replace(real, address=address), timeout=1.0)

    statuses: list[DaemonStatus] = []
    outages: list[str] = []
    link = DaemonLink(settings, statuses.append, outages.append, connect=connect)
    try:
        answer = await run_job(link, "models.list", {})
        assert answer["models"] and len(connects) == 2
        assert [s.connected for s in statuses] == [True, False, True]
        assert statuses[-1].message == "reconnected" and statuses[-1].address == real.address
        assert len(outages) == 1
    finally:
        await link.close()


async def test_an_unreachable_daemon_fails_commands_and_is_announced_once(tmp_path) -> None:
    settings = Settings(connection_file=str(tmp_path / "missing.json"))
    outages: list[str] = []
    link = DaemonLink(settings, lambda status: None, outages.append)
    try:
        for _ in range(3):
            try:
                await run_job(link, "models.list", {})
            except CommandFailed as failure:
                assert "cannot reach the Ecco daemon" in failure.message and "missing.json" in failure.message
                assert failure.data == {"daemonCode": "DAEMON_UNAVAILABLE"}
            else:
                raise AssertionError("a command succeeded without a daemon")
        assert len(outages) == 1
        assert link.status.connected is False and "missing.json" in (link.status.message or "")
    finally:
        await link.close()
