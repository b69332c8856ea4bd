"""Connection life: connected status, an unreachable daemon said clearly, and a daemon restart."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from tests.lsp.lsp_session import Session


async def test_status_names_address_and_model(session: Session, tiny_llama: Path) -> None:
    status = session.last_status()
    assert status is not None and status["connected"] is True
    assert status["address"].startswith("tcp://127.0.0.1:")
    assert status["model"] == str(tiny_llama)


async def test_unreachable_daemon_is_said_once_and_commands_fail(
    bare_session: Session, tmp_path: Path
) -> None:
    missing = tmp_path / "no-daemon" / "connection.json"
    await bare_session.initialize({"connectionFile": str(missing)}, tmp_path)
    status = await bare_session.wait_for(
        "a disconnected status",
        lambda: next(
            (
                s
                for s in bare_session.statuses
                if s["connected"] is False and "cannot reach" in (s["message"] or "")
            ),
            None,
        ),
    )
    assert str(missing) in status["message"]
    uri = bare_session.open(tmp_path / "a.txt", "Hello there\n")
    try:
        await bare_session.explain(uri, types.Range(start=types.Position(0, 0), end=types.Position(0, 5)))
    except Exception as exc:  # the JSON-RPC error reaches the client as an exception
        assert "cannot reach the Ecco daemon" in str(exc)
    else:
        raise AssertionError("explain succeeded without a daemon")
    warnings = [m for m in bare_session.client.messages if "cannot reach" in m.message]
    assert len(warnings) == 1, [m.message for m in bare_session.client.messages]
