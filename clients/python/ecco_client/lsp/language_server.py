"""The Ecco language server's state and what it sends the editor: settings, the daemon link, the
explained results, status and diagnostics. Its features (handlers) are registered in server.py."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ecco_client import __version__
from ecco_client.lsp.cancellation import CancellableProtocol, current_request_id
from ecco_client.lsp.daemon_link import DaemonLink, DaemonStatus
from ecco_client.lsp.presentation import diagnostics_for
from ecco_client.lsp.results import ResultStore
from ecco_client.lsp.settings import SECTION, Settings, parse_settings, settings_section

STATUS_NOTIFICATION = "ecco/status"
# How long a command waits for the first settings of a client that cannot be asked for them.
SETTINGS_WAIT_S = float(os.environ.get("ECCO_LSP_SETTINGS_WAIT_S", "3"))


class EccoLanguageServer(LanguageServer):
    """Holds the daemon link, the explained results and the latest settings."""

    protocol: CancellableProtocol

    def __init__(self) -> None:
        super().__init__(
            "ecco-lsp",
            __version__,
            protocol_cls=CancellableProtocol,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
        self.settings = Settings()
        self._known: asyncio.Event | None = None
        self.results = ResultStore()
        self.link = DaemonLink(
            self.settings, self.send_status, self.announce_outage, on_error=self.background_failure
        )

    def protocol_request_id(self) -> int | str | None:
        """The id of the client request the calling task serves."""
        return current_request_id.get()

    # -------------------------------------------------------------------------------- to the client

    def send_status(self, status: DaemonStatus) -> None:
        self.protocol.notify(STATUS_NOTIFICATION, status.to_json())

    def announce_outage(self, message: str) -> None:
        """Once per outage: a message the user sees; the status notification carries the rest."""
        self.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Warning, message=f"Ecco: {message}")
        )

    def background_failure(self, error: Exception) -> None:
        """A failure that belongs to no request (the daemon link's loops): pygls's report_server_error."""
        self.report_server_error(error, Exception)  # type: ignore[arg-type]

    def log_to_client(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def publish_diagnostics(self, uri: str) -> None:
        enabled = self.settings.diagnostics_enabled
        found = (
            diagnostics_for(self.results.for_document(uri), self.settings.probability_threshold)
            if enabled
            else []
        )
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=found))

    # ---------------------------------------------------------------------------------- settings

    def can_ask_configuration(self) -> bool:
        workspace = self.client_capabilities.workspace if self.client_capabilities else None
        return bool(workspace and workspace.configuration)

    async def fetch_settings(self, scope_uri: str | None = None) -> Settings:
        """The settings for a command: asked through workspace/configuration where the client offers it;
        else those pushed or given at start, waiting briefly for them when none came yet."""
        if not self.can_ask_configuration():
            await self.settings_arrived()
            return self.settings
        try:
            answer = await self.workspace_configuration_async(
                types.ConfigurationParams(
                    items=[types.ConfigurationItem(section=SECTION, scope_uri=scope_uri)]
                )
            )
        except Exception as exc:  # the editor could not answer; keep what we had
            self.log_to_client(f"Ecco: could not read the settings: {exc}", types.MessageType.Warning)
            return self.settings
        section = answer[0] if answer else None
        if not section:  # the editor keeps no "ecco" section (they came another way): keep those
            await self.settings_arrived()
            return self.settings
        return self.read_settings(section)

    def read_settings(self, values: Any) -> Settings:
        """Settings from an "ecco" section (problems logged); from now on the settings count as known."""
        settings, problems = parse_settings(values)
        for problem in problems:
            self.log_to_client(f"Ecco: {problem}", types.MessageType.Warning)
        self._settings_known().set()
        return settings

    def apply_settings(self, values: Any) -> Settings:
        self.settings = self.read_settings(values)
        return self.settings

    async def settings_arrived(self) -> bool:
        """Waits up to SETTINGS_WAIT_S for the first settings (a push after ``initialized``, as
        nvim-lspconfig sends); False, and the defaults from then on, when none came."""
        known = self._settings_known()
        if known.is_set():
            return True
        try:
            await asyncio.wait_for(known.wait(), SETTINGS_WAIT_S)
            return True
        except asyncio.TimeoutError:
            self.log_to_client(f"Ecco: no settings arrived within {SETTINGS_WAIT_S:g}s; using the defaults "
                               f"({self.settings.describe_target()})", types.MessageType.Warning)
            known.set()
            return False

    async def use_settings(self, new: Settings) -> None:
        """Settings that changed: the daemon link follows, and diagnostics are published anew if they differ."""
        old, self.settings = self.settings, new
        await self.link.update_settings(new)
        if (old.diagnostics_enabled, old.probability_threshold) != (
            new.diagnostics_enabled,
            new.probability_threshold,
        ):
            for uri in {e.uri for e in self.results}:
                self.publish_diagnostics(uri)

    async def refresh_settings(self, pushed: Any = None) -> None:
        """After didChangeConfiguration: the pushed "ecco" settings if it carries them, else asked anew."""
        section = settings_section(pushed)
        await self.use_settings(self.read_settings(section) if section is not None else await self.fetch_settings())

    def _settings_known(self) -> asyncio.Event:
        """Set once settings came through any channel (made lazily: on the server's own event loop)."""
        if self._known is None:
            self._known = asyncio.Event()
        return self._known
