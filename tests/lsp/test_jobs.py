"""Daemon jobs behind the commands: cancelling the LSP request cancels the daemon job, recompute answers
from the stored result, and a model that is not loaded is loaded with progress."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

import ecco_client.aio as ecco_aio
from tests.daemon_process import DaemonProcess
from tests.lsp.lsp_session import Session, plain, whole_line

TEXT = "The quick brown fox jumps over the lazy dog.\n"


async def daemon_queue(client: Any) -> dict[str, Any]:
    return (await client.status())["queue"]


async def poll(what: str, probe, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_cancelling_explain_cancels_the_daemon_job(
    session: Session, daemon: DaemonProcess, tmp_path: Path
) -> None:
    uri = session.open(tmp_path / "doc.txt", TEXT)
    direct = await ecco_aio.connect(connection_file=daemon.connection_file)
    try:
        model = (await direct.list_models())[0]["name"]
        # A slow job (integrated gradients, many steps) holds the worker, so the explain's analysis waits.
        blocker = await direct.request(
            "analyze",
            {"model": model, "text": TEXT * 4, "attribution": ["integrated_gradients"], "steps": 1000},
        )
        await poll("the blocker to run", lambda: _running(direct, blocker.request_id))
        arguments = [
            uri,
            {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": len(TEXT) - 1}},
        ]
        request = asyncio.ensure_future(
            session.client.protocol.send_request_async(
                types.WORKSPACE_EXECUTE_COMMAND,
                types.ExecuteCommandParams(command="ecco.explain", arguments=arguments),
                msg_id="explain-to-cancel",
            )
        )
        queued = await poll("the explain's analysis to wait in the queue", lambda: _others(direct, blocker))
        session.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="explain-to-cancel"))
        with pytest.raises(JsonRpcRequestCancelled):
            await request
        await poll("the analysis to leave the daemon's queue", lambda: _gone(direct, queued[0]))
        assert not blocker.done, "the analysis left the queue because it was cancelled, not because it ran"
        queue_status = [s for s in session.statuses if s.get("queuePosition")]
        assert queue_status and queue_status[-1]["queuePosition"] >= 1  # the status bar showed the wait
        await blocker.cancel()
    finally:
        await direct.close()


async def _running(client: Any, request_id: str) -> bool:
    return any(job["id"] == request_id for job in (await daemon_queue(client))["running"])


async def _others(client: Any, blocker: Any) -> list[str]:
    """Ids of the analyses waiting behind the blocker."""
    queue = await daemon_queue(client)
    return [
        job["id"] for job in queue["queued"] if job["op"] == "analyze" and job["id"] != blocker.request_id
    ]


async def _gone(client: Any, request_id: str) -> bool:
    queue = await daemon_queue(client)
    return not any(job["id"] == request_id for job in queue["queued"] + queue["running"])


async def _no_op(client: Any, op: str) -> bool:
    queue = await daemon_queue(client)
    return not any(job["op"] == op for job in queue["queued"] + queue["running"])


async def test_recompute_answers_from_the_stored_result(session: Session, tmp_path: Path) -> None:
    uri = session.open(tmp_path / "doc.txt", TEXT)
    result = await session.explain(uri, whole_line(0, TEXT.rstrip("\n")))
    tabs = {tab["view"]: tab for tab in result["view"]["data"]["tabs"]}
    assert {"probability", "saliency", "layer_predictions", "rankings", "nmf"} <= set(tabs)
    n_tokens = len(result["tokens"])
    assert [p["position"] for p in tabs["layer_predictions"]["data"]["positions"]] == [n_tokens]

    layers = plain(
        await session.client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="ecco.recompute",
                arguments=[result["resultId"], "layer-predictions", {"position": 2, "tab": 2}],
            )
        )
    )
    assert [p["position"] for p in layers["positions"]] == [2, n_tokens] and layers["selected"] == 2
    at_two = layers["positions"][0]["layers"]
    assert len(at_two) == len(layers["layer_labels"]) and len(at_two[0]["top"]) == 10

    nmf = plain(
        await session.client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="ecco.recompute", arguments=[result["resultId"], "nmf", {"k": 2, "tab": 4}]
            )
        )
    )
    assert nmf["k"] == 2 and len(nmf["factors"]) == 2 and len(nmf["factors"][0]) == n_tokens

    watched = plain(
        await session.client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="ecco.recompute",
                arguments=[result["resultId"], "rankings-watch", {"position": 3, "watch": [" the", " dog"]}],
            )
        )
    )
    assert watched["position"] == 3 and [w["text"] for w in watched["watch"]] == [" the", " dog"]
    assert len(watched["ranks"]) == len(watched["layer_labels"]) and all(
        len(r) == 2 for r in watched["ranks"]
    )
    assert all(rank >= 1 for row in watched["ranks"] for rank in row)

    with pytest.raises(Exception, match="no explained selection"):
        await session.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="ecco.recompute", arguments=["ecco-unknown", "nmf", {"k": 2}])
        )


async def test_a_model_not_loaded_is_loaded_with_progress(
    session: Session, tiny_model_factory, tmp_path: Path
) -> None:
    gpt2 = tiny_model_factory("gpt2")
    uri = session.open(tmp_path / "doc.txt", TEXT)
    result = await session.explain(
        uri, whole_line(0, TEXT.rstrip("\n")), {"model": str(gpt2), "attribution": [], "generate": 0}
    )
    assert result["model"] != Path(session.model).name and len(result["tokens"]) > 3
    loading = [
        r
        for r in session.client.progress_reports.values()
        if r and isinstance(r[0], types.WorkDoneProgressBegin) and "loading" in r[0].title
    ]
    assert len(loading) == 1 and isinstance(loading[0][-1], types.WorkDoneProgressEnd)
    assert loading[0][-1].message == "done"


async def test_cancelling_the_continuation_progress_stops_the_generation(
    session: Session, daemon: DaemonProcess, tmp_path: Path
) -> None:
    uri = session.open(tmp_path / "doc.txt", TEXT)
    direct = await ecco_aio.connect(connection_file=daemon.connection_file)
    try:
        result = await session.explain(
            uri,
            whole_line(0, TEXT.rstrip("\n")),
            {"model": session.model, "attribution": [], "generate": 512},
        )
        await session.wait_for("streamed tokens", lambda: session.tokens)
        token, reports = next(
            (t, r)
            for t, r in session.client.progress_reports.items()
            if r and isinstance(r[0], types.WorkDoneProgressBegin) and "generating" in r[0].title
        )
        assert reports[0].cancellable is True
        session.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
        await session.wait_for(
            "the progress to end", lambda: isinstance(reports[-1], types.WorkDoneProgressEnd)
        )
        assert reports[-1].message == "cancelled"
        await poll("the generation to leave the daemon", lambda: _no_op(direct, "generate"))
        assert all(s["resultId"] == result["resultId"] for s in session.tokens)
        assert len(session.tokens) < 512
    finally:
        await direct.close()
