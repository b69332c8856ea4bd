"""Settings from every channel an editor uses, with a client that cannot answer workspace/configuration:
pushed by didChangeConfiguration (nvim-lspconfig), flat in initializationOptions (Helix's `config`), a
command that arrives before them waiting for them; and progress with percentages for every client."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types

from tests.lsp.conftest import daemon_settings
from tests.lsp.lsp_session import Session, whole_line

TEXT = "The quick brown fox jumps over the lazy dog."


def without_configuration() -> types.ClientCapabilities:
    """An editor that shows progress but cannot be asked for settings (no workspace.configuration)."""
    return types.ClientCapabilities(
        workspace=types.WorkspaceClientCapabilities(configuration=False, did_change_configuration=None),
        window=types.WindowClientCapabilities(work_done_progress=True),
    )


def push(session: Session, settings: dict[str, object]) -> None:
    session.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"ecco": settings}))


async def explained(session: Session, tmp_path: Path) -> dict:
    uri = session.open(tmp_path / "doc.txt", TEXT)
    return await session.explain(uri, whole_line(0, TEXT))


async def test_settings_pushed_as_nvim_lspconfig_does(bare_session: Session, daemon, tiny_llama, tmp_path):
    await bare_session.initialize_as(without_configuration(), tmp_path, model=str(tiny_llama))
    push(bare_session, daemon_settings(daemon, tiny_llama))
    await bare_session.wait_for("the daemon connection", lambda: (bare_session.last_status() or {}).get("connected"))
    result = await explained(bare_session, tmp_path)
    assert result["tokens"] and result["model"]


async def test_flat_initialization_options_as_helix_sends_them(bare_session: Session, daemon, tiny_llama, tmp_path):
    await bare_session.initialize_as(without_configuration(), tmp_path, model=str(tiny_llama),
                                     initialization_options=daemon_settings(daemon, tiny_llama))
    result = await explained(bare_session, tmp_path)
    assert result["tokens"]
    connected = [s for s in bare_session.statuses if s.get("connected")]
    assert connected and not any("127.0.0.1:5555" in (s.get("message") or "") for s in bare_session.statuses)


async def test_a_command_before_the_settings_waits_for_them(bare_session: Session, daemon, tiny_llama, tmp_path):
    await bare_session.initialize_as(without_configuration(), tmp_path, model=str(tiny_llama))
    command = asyncio.ensure_future(explained(bare_session, tmp_path))
    await asyncio.sleep(0.3)  # the command is in flight before any settings exist
    assert not command.done()
    push(bare_session, daemon_settings(daemon, tiny_llama))
    result = await asyncio.wait_for(command, 60)
    assert result["tokens"]
    assert not [s for s in bare_session.statuses if "5555" in str(s.get("address") or "")]


async def test_progress_reaches_the_editor_with_percentages(session: Session, daemon, tiny_llama, tmp_path):
    uri = session.open(tmp_path / "doc.txt", TEXT)
    await session.explain(uri, whole_line(0, TEXT),
                          {"model": session.model, "attribution": ["integrated_gradients"], "generate": 0})
    reports = [r for values in session.client.progress_reports.values() for r in values
               if isinstance(r, types.WorkDoneProgressReport) and r.percentage is not None]
    assert any("integrated_gradients" in (r.message or "") for r in reports)
    assert max(r.percentage for r in reports) == 100
    mirrored = [p for p in session.progress if "analyzing" in p["title"]]
    assert mirrored[-1]["done"] is True and any(p["percentage"] == 100 for p in mirrored)
