"""Fixtures of the remote tier: a real sshd on loopback, and plain servers to forward to."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .sshd import SshServer, start_sshd

# Subprocesses started by these tests import the client from the source tree.
CLIENT_SRC = Path(__file__).resolve().parents[2] / "clients" / "python"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so fixtures can attach logs to failing tests."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sshd_without_forwarding(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    server = start_sshd(tmp_path_factory.mktemp("sshd-no-forwarding"), forwarding=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sshd(sshd_server: SshServer, request: pytest.FixtureRequest) -> Iterator[SshServer]:
    """The shared sshd; its log goes into the report of a test that fails."""
    start = len(sshd_server.log())
    yield sshd_server
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        report.sections.append(("sshd log", sshd_server.log()[start:]))
    assert sshd_server.process.poll() is None, f"sshd died during the test:\n{sshd_server.log()[start:]}"


@pytest.fixture
def tunnel_options(sshd: SshServer) -> dict[str, Any]:
    """SshTunnel keyword arguments that log in to the test sshd, isolated from the user's ssh config."""
    return {"identity_file": sshd.identity_file, "ssh_options": sshd.ssh_options, "config_file": os.devnull}


class EchoServer:
    """A threaded TCP echo server on a loopback port: the simplest real thing to forward to."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        except OSError:
            pass
        self.listener.close()
        self._thread.join(5)


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()
