"""Fixtures of the language-server tier: the real server over stdio, talking to a real daemon."""

from __future__ import annotations

from pathlib import Path

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
