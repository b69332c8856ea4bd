"""The Ecco language server (pygls 2): explain a selection through the daemon, then hover, diagnostics
and view recomputation from the stored result. Handlers are shaped like pygls's examples; the work of
each command lives in explain.py."""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ecco_client import __version__
from ecco_client.lsp.cancellation import CancellableProtocol, current_request_id
from ecco_client.lsp.daemon_link import DaemonLink, DaemonStatus
from ecco_client.lsp.explain import Explainer
from ecco_client.lsp.presentation import diagnostics_for, hover_for
from ecco_client.lsp.results import ResultStore
from ecco_client.lsp.settings import SECTION, Settings, parse_settings

log = logging.getLogger(__name__)

STATUS_NOTIFICATION = "ecco/status"
TOKEN_NOTIFICATION = "ecco/token"
EXPLAIN_COMMAND = "ecco.explain"
RECOMPUTE_COMMAND = "ecco.recompute"


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
        self.explainer = Explainer(self)

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


server = EccoLanguageServer()


@server.feature(types.INITIALIZE)
def on_initialize(ls: EccoLanguageServer, params: types.InitializeParams) -> None:
    options = params.initialization_options
    if isinstance(options, dict) and isinstance(options.get("settings"), dict):
        ls.apply_settings(options["settings"])
        ls.link.settings = ls.settings


@server.feature(types.INITIALIZED)
async def on_initialized(ls: EccoLanguageServer, params: types.InitializedParams) -> None:
    settings = await ls.fetch_settings()
    ls.link.settings = settings
    ls.send_status(ls.link.status)
    ls.link.start()


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def on_configuration_changed(
    ls: EccoLanguageServer, params: types.DidChangeConfigurationParams
) -> None:
    await ls.refresh_settings()


@server.feature(types.SHUTDOWN)
async def on_shutdown(ls: EccoLanguageServer, params: None) -> None:
    await ls.explainer.close()
    await ls.link.close()


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def on_change(ls: EccoLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    stale = []
    for change in params.content_changes:
        changed = change.range if isinstance(change, types.TextDocumentContentChangePartial) else None
        stale += ls.results.invalidate(uri, changed)
    if stale:
        ls.explainer.forget(stale)
        ls.publish_diagnostics(uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def on_close(ls: EccoLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    if ls.results.for_document(uri):
        ls.explainer.forget(ls.results.for_document(uri))
        ls.results.forget_document(uri)
        ls.publish_diagnostics(uri)


@server.feature(types.TEXT_DOCUMENT_HOVER)
def on_hover(ls: EccoLanguageServer, params: types.HoverParams) -> types.Hover | None:
    found = ls.results.token_at(params.text_document.uri, params.position)
    if found is None:
        return None
    explanation, token = found
    return hover_for(explanation, token)


@server.command(EXPLAIN_COMMAND)
async def explain(ls: EccoLanguageServer, *arguments: Any) -> dict[str, Any]:
    """(uri, range, options?) -> ExplainResult; see clients/vscode/shared/protocol.ts."""
    ls.protocol.track_current_task()
    return await ls.explainer.explain(list(arguments))


@server.command(RECOMPUTE_COMMAND)
async def recompute(ls: EccoLanguageServer, *arguments: Any) -> Any:
    """(resultId, view, params) -> the renderer's data for that view, computed from the stored result."""
    ls.protocol.track_current_task()
    return await ls.explainer.recompute(list(arguments))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)  # it logs every message at INFO
    server.start_io()
