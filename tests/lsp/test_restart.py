"""A daemon restart: the server notices the loss while idle, says so once, reconnects to the new
process (which writes a new connection file, on a new port) and serves commands again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.daemon_process import DaemonProcess
from tests.lsp.lsp_session import Session, whole_line


async def test_server_reconnects_after_a_daemon_restart(
    session: Session, daemon: DaemonProcess, tmp_path: Path
) -> None:
    first = session.last_status()
    assert first is not None and first["connected"] is True
    uri = session.open(tmp_path / "note.txt", "The cat sat on the mat.\n")

    seen = len(session.statuses)
    await asyncio.to_thread(daemon.terminate)
    lost = await session.wait_for(
        "the server to notice the lost daemon",
        lambda: next((s for s in session.statuses[seen:] if s["connected"] is False), None),
    )
    assert "cannot reach the Ecco daemon" in lost["message"]

    seen = len(session.statuses)
    await asyncio.to_thread(daemon.start)
    back = await session.wait_for(
        "the server to reconnect",
        lambda: next((s for s in session.statuses[seen:] if s["connected"] is True), None),
    )
    assert back["message"] == "reconnected"
    assert back["address"] == daemon.info.address

    result = await session.explain(uri, whole_line(0, "The cat sat on the mat."))
    assert len(result["tokens"]) > 3
    warnings = [m.message for m in session.client.messages if "cannot reach" in m.message]
    assert len(warnings) == 1, warnings  # one announcement per outage, not one per retry
