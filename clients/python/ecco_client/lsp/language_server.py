"""The Ecco language server's state and what it sends the editor: settings, the daemon link, the
explained results, status and diagnostics. Its features (handlers) are registered in server.py."""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ecco_client import __version__
from ecco_client.lsp.cancellation import CancellableProtocol, current_request_id
from ecco_client.lsp.daemon_link import DaemonLink, DaemonStatus
from ecco_client.lsp.presentation import diagnostics_for
from ecco_client.lsp.results import ResultStore
from ecco_client.lsp.settings import SECTION, Settings, parse_settings

STATUS_NOTIFICATION = "ecco/status"


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

    async def fetch_settings(self, scope_uri: str | None = None) -> Settings:
        """The "ecco" section through workspace/configuration, when the client offers it."""
        workspace = self.client_capabilities.workspace if self.client_capabilities else None
        if not (workspace and workspace.configuration):
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
        return self.apply_settings(answer[0] if answer else None)

    def apply_settings(self, values: Any) -> Settings:
        settings, problems = parse_settings(values)
        for problem in problems:
            self.log_to_client(f"Ecco: {problem}", types.MessageType.Warning)
        self.settings = settings
        return settings

    async def refresh_settings(self) -> None:
        old = self.settings
        new = await self.fetch_settings()
        await self.link.update_settings(new)
        if (old.diagnostics_enabled, old.probability_threshold) != (
            new.diagnostics_enabled,
            new.probability_threshold,
        ):
            for uri in {e.uri for e in self.results}:
                self.publish_diagnostics(uri)
