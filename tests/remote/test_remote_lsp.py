"""The language server (as VS Code starts it) reaching the daemon through its own SSH tunnel (``ecco.sshHost``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from pytest_lsp import ClientServerConfig

from tests.daemon_process import DaemonProcess
from tests.lsp.lsp_session import SERVER_COMMAND, SERVER_ENV, Session

from .sshd import SshServer
from .test_ssh_tunnel import pid_running

HOST_ALIAS = "ecco-gpu-box"


def ssh_children_using(config: Path) -> list[int]:
    """Pids of live ssh processes started with this (test-unique) config file."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"ssh") and str(config).encode() in argv and pid_running(int(entry.name)):
            pids.append(int(entry.name))
    return pids


@pytest_asyncio.fixture
async def ssh_config(sshd: SshServer, tmp_path: Path) -> Path:
    return sshd.write_client_config(tmp_path / "ssh_config", HOST_ALIAS)


@pytest_asyncio.fixture
async def server_through_ssh(ssh_config: Path) -> AsyncIterator[Session]:
    """The real pygls server over stdio; its tunnels read the test's ssh config via $ECCO_SSH_CONFIG."""
    config = ClientServerConfig(server_command=SERVER_COMMAND,
                                server_env={**SERVER_ENV, "ECCO_SSH_CONFIG": str(ssh_config)})
    client = await config.start()
    session = Session(client)
    yield session
    await client.stop()


async def test_language_server_reaches_the_daemon_through_ssh(server_through_ssh: Session, daemon: DaemonProcess,
                                                              tiny_llama: Path, ssh_config: Path,
                                                              sshd: SshServer, tmp_path: Path) -> None:
    session = server_through_ssh
    accepted_before = sshd.log().count("Accepted publickey")
    await session.initialize({"connectionFile": str(daemon.connection_file), "sshHost": HOST_ALIAS,
                              "model": str(tiny_llama), "generateTokens": 0}, tmp_path)
    status = await session.wait_for("a connected status", lambda: next(
        (s for s in session.statuses if s["connected"]), None))
    # The server talks to the local end of its tunnel, not to the daemon's own address.
    assert status["address"].startswith("tcp://127.0.0.1:")
    assert status["address"] != daemon.info.address
    (tunnel_pid,) = ssh_children_using(ssh_config)
    assert sshd.log().count("Accepted publickey") == accepted_before + 1
    await session.client.shutdown_session()
    await session.wait_for("the tunnel to close with the server", lambda: not pid_running(tunnel_pid))
