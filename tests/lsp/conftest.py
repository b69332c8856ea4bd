"""Fixtures of the language-server tier: the real server over stdio, talking to a real daemon."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.daemon_process import DaemonProcess
from tests.lsp.lsp_session import SERVER_COMMAND, SERVER_ENV, Session

CONFIG = ClientServerConfig(server_command=SERVER_COMMAND, server_env=SERVER_ENV)


def daemon_settings(daemon: DaemonProcess, model: Path, **extra: object) -> dict[str, object]:
    return {
        "connectionFile": str(daemon.connection_file),
        "model": str(model),
        "attributionMethods": ["grad_x_input"],
        "generateTokens": 0,
        **extra,
    }


@pytest.fixture(scope="session")
def daemon(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One daemon (tiny Llama) for the whole tier: starting one takes seconds. The restart test restarts it
    in place; it comes back on a new port with a rewritten connection file, which every server reads."""
    with DaemonProcess(tmp_path_factory.mktemp("lsp-daemon"), [str(tiny_llama)]) as process:
        yield process


@pytest_lsp.fixture(config=CONFIG)
async def lsp_client(lsp_client: LanguageClient):
    """The pytest-lsp client, with the server started as a subprocess (not initialized yet)."""
    yield


@pytest_asyncio.fixture
async def bare_session(lsp_client: LanguageClient):
    """A server not initialized yet: the test gives the settings."""
    yield Session(lsp_client)
    await lsp_client.shutdown_session()


@pytest_asyncio.fixture
async def session(bare_session: Session, daemon: DaemonProcess, tiny_llama: Path, tmp_path: Path):
    """An initialized server connected to the module's daemon (tiny Llama)."""
    await bare_session.initialize(daemon_settings(daemon, tiny_llama), tmp_path)
    await bare_session.wait_for(
        "the daemon connection", lambda: (bare_session.last_status() or {}).get("connected")
    )
    yield bare_session
