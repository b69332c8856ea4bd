"""The Ecco language server (pygls 2): explain a selection through the daemon, then hover, diagnostics
and view recomputation from the stored result. Handlers are shaped like pygls's examples; the work of
each command lives in explain.py, the server's state in language_server.py."""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types

from ecco_client.lsp.errors import BadArguments, CommandFailed
from ecco_client.lsp.explain import Explainer
from ecco_client.lsp.language_server import EccoLanguageServer
from ecco_client.lsp.presentation import hover_for
from ecco_client.lsp.settings import settings_section

EXPLAIN_COMMAND = "ecco.explain"
RECOMPUTE_COMMAND = "ecco.recompute"


server = EccoLanguageServer()
explainer = Explainer(server)


@server.feature(types.INITIALIZE)
def on_initialize(ls: EccoLanguageServer, params: types.InitializeParams) -> None:
    """Settings given at start, in any layout (settings.settings_section)."""
    section = settings_section(params.initialization_options)
    if section is not None:
        ls.apply_settings(section)
        ls.link.settings = ls.settings


@server.feature(types.INITIALIZED)
async def on_initialized(ls: EccoLanguageServer, params: types.InitializedParams) -> None:
    """Connects once the settings are known: asked for, given at start, or pushed right after this
    (nvim-lspconfig), so the first connection goes where the user said, not to the default address."""
    ls.send_status(ls.link.status)
    settings = await ls.fetch_settings()
    await ls.use_settings(settings)
    ls.link.start()


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def on_configuration_changed(
    ls: EccoLanguageServer, params: types.DidChangeConfigurationParams
) -> None:
    await ls.refresh_settings(params.settings)


@server.feature(types.SHUTDOWN)
async def on_shutdown(ls: EccoLanguageServer, params: None) -> None:
    await explainer.close()
    await ls.link.close()


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def on_change(ls: EccoLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    stale = []
    for change in params.content_changes:
        changed = change.range if isinstance(change, types.TextDocumentContentChangePartial) else None
        stale += ls.results.invalidate(uri, changed)
    if stale:
        explainer.forget(stale)
        ls.publish_diagnostics(uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def on_close(ls: EccoLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    if ls.results.for_document(uri):
        explainer.forget(ls.results.for_document(uri))
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
    return await explainer.explain(list(arguments))


@server.command(RECOMPUTE_COMMAND)
async def recompute(ls: EccoLanguageServer, *arguments: Any) -> Any:
    """(resultId, view, params) -> the renderer's data for that view, computed from the stored result."""
    ls.protocol.track_current_task()
    return await explainer.recompute(list(arguments))


class RefusalsInOneLine(logging.Filter):
    """pygls logs every error a request is answered with at ERROR, traceback included. Our refusals (the
    daemon said no, the arguments were wrong) are no fault of the server, and the client gets their message
    in the answer: one line at INFO, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (CommandFailed, BadArguments)):
            message = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = "message %s answered with the error: %s", (message, error)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)  # it logs every message at INFO
    logging.getLogger("pygls.protocol.json_rpc").addFilter(RefusalsInOneLine())
    server.start_io()
