"""Drives the real language server (`python -m ecco_client.lsp`) over stdio with pytest-lsp's client,
as VS Code would: its capabilities, the "ecco" settings through workspace/configuration, and records
of the server's custom notifications. Every wait polls against a deadline."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

SERVER_COMMAND = [sys.executable, "-m", "ecco_client.lsp"]
# Quick heartbeats and retries so a lost or restarted daemon is noticed within a test's patience.
SERVER_ENV = {
    **os.environ,
    "ECCO_LSP_HEARTBEAT_S": "0.3",
    "ECCO_LSP_CONNECT_TIMEOUT_S": "2",
    "ECCO_LSP_RETRY_MAX_S": "0.5",
    "OMP_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}
DEADLINE_S = 60.0

T = TypeVar("T")


def plain(value: Any) -> Any:
    """Notification params of custom methods arrive as pygls objects; this gives dicts and lists."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return [plain(v) for v in value]
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items()}
    return value


class Session:
    """One client + server pair and what the server sent that pytest-lsp does not keep itself."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.statuses: list[dict[str, Any]] = []
        self.tokens: list[dict[str, Any]] = []
        self.model = ""
        client.feature("ecco/status")(lambda params: self.statuses.append(plain(params)))
        client.feature("ecco/token")(lambda params: self.tokens.append(plain(params)))
        self.progress: list[dict[str, Any]] = []
        client.feature("ecco/progress")(lambda params: self.progress.append(plain(params)))

    async def initialize(self, settings: dict[str, Any], root: Path) -> None:
        self.client.set_configuration(settings, section="ecco")
        await self.initialize_as(client_capabilities("visual-studio-code"), root, model=str(settings.get("model", "")))

    async def initialize_as(self, capabilities: types.ClientCapabilities, root: Path, *, model: str,
                            initialization_options: Any = None) -> None:
        """Initializes as an editor with these capabilities (and maybe settings given at start) would."""
        self.model = model
        await self.client.initialize_session(
            types.InitializeParams(
                capabilities=capabilities,
                root_uri=root.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
                initialization_options=initialization_options,
            )
        )

    def open(self, path: Path, text: str) -> str:
        path.write_text(text, encoding="utf-8")
        uri = path.as_uri()
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="plaintext", version=1, text=text)
            )
        )
        return uri

    async def explain(self, uri: str, selection: types.Range, options: dict[str, Any] | None = None) -> Any:
        arguments: list[Any] = [
            uri,
            {
                "start": {"line": selection.start.line, "character": selection.start.character},
                "end": {"line": selection.end.line, "character": selection.end.character},
            },
        ]
        if options is not None:
            arguments.append(options)
        return plain(
            await self.client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="ecco.explain", arguments=arguments)
            )
        )

    async def hover(self, uri: str, line: int, character: int) -> types.Hover | None:
        return await self.client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line, character)
            )
        )

    async def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float = DEADLINE_S) -> T:
        """Polls ``probe`` until it returns something truthy; fails naming ``what`` at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; statuses: {self.statuses}"
                )
            await asyncio.sleep(0.05)

    def diagnostics_cleared(self, uri: str) -> bool:
        """True once the server published an empty diagnostics list for ``uri``."""
        published = self.client.diagnostics.get(uri)
        return published is not None and len(published) == 0

    def last_status(self) -> dict[str, Any] | None:
        return self.statuses[-1] if self.statuses else None


def whole_line(line: int, text: str) -> types.Range:
    return types.Range(
        start=types.Position(line, 0), end=types.Position(line, len(text.encode("utf-16-le")) // 2)
    )
