"""Nothing lost: results outlive a kill -9, final replies can be fetched again, gone clients' jobs stop."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import ecco_client
from tests.daemon_process import DaemonProcess
from tests.service.multiuser_support import RawClient

VIEWS = [
    ("layer_predictions", {"position": 3, "topk": 5}),
    ("primary_attributions", {"attr_method": "grad_x_input"}),
    ("rankings", {}),
    ("nmf", {"n_components": 2}),
]


def _views(client: ecco_client.Client, result_id: str) -> list[dict]:
    return [client.call("view", {"result_id": result_id, "view": view, "params": params})["data"]
            for view, params in VIEWS]


def _assert_same(a, b) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)) and not isinstance(b, np.ndarray):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, (np.ndarray, float)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    else:
        assert a == b


def test_results_are_viewable_after_a_kill_9_and_a_restart(tiny_llama: Path, tmp_path: Path):
    process = DaemonProcess(tmp_path, [str(tiny_llama)]).start()
    try:
        with ecco_client.connect(connection_file=process.connection_file, timeout=30) as client:
            out = client.model().generate("one two three four", generate=4, attribution=["grad_x_input"])
            before = _views(client, out.result_id)
        process.kill()  # SIGKILL: no shutdown path runs
        process.start()  # same state folder
        with ecco_client.connect(connection_file=process.connection_file, timeout=30) as client:
            info = client.call("results.info", {"result_id": out.result_id})
            assert info["kind"] == "analysis" and info["expires_in_s"] > 0
            _assert_same(before, _views(client, out.result_id))
            with pytest.raises(ecco_client.NotFound):
                client.call("results.info", {"result_id": "0" * 32})
    finally:
        process.kill()


def test_a_final_reply_can_be_fetched_again_by_request_id(daemon):
    raw = RawClient(daemon.info)
    try:
        event, content = raw.call("generate", {"prompt": "a b c", "generate": 3, "stream": False})
        assert event == "result"
        request_id = next(iter(raw.sent))
        again_event, again = raw.call("requests.reply", {"request_id": request_id})
        assert again_event == "result" and again["state"] == "done" and again["event"] == "result"
        assert again["content"]["generated_text"] == content["generated_text"]
        np.testing.assert_array_equal(again["content"]["token_ids"], content["token_ids"])
        event, error = raw.call("requests.reply", {"request_id": "never-sent"})
        assert event == "error" and error["code"] == "NOT_FOUND"
    finally:
        raw.close()


def test_another_user_cannot_fetch_my_replies(daemon):
    from tests.service.multiuser_support import add_user

    mine = RawClient(daemon.info)
    theirs = RawClient.from_file(add_user(daemon.state_dir, "eve-replies"), address=daemon.info.address)
    try:
        mine.call("ping")
        request_id = next(iter(mine.sent))
        event, error = theirs.call("requests.reply", {"request_id": request_id})
        assert event == "error" and error["code"] == "NOT_FOUND"
    finally:
        mine.close()
        theirs.close()


def test_the_jobs_of_a_client_that_stopped_sending_heartbeats_are_cancelled(tiny_llama: Path, tmp_path: Path):
    with DaemonProcess(tmp_path, [str(tiny_llama)], extra_args=["--client-grace", "1"]) as process:
        silent = RawClient(process.info)
        # Long enough that it is still running when the grace period ends (a few seconds on a tiny model).
        request_id = silent.send("analyze", {"text": " ".join(["word"] * 120), "attribution": ["ig"],
                                             "steps": 1000})
        started = time.monotonic()
        # The silent client never pings. Another connection of the same user watches through the journal.
        watcher = RawClient(process.info)
        try:
            while True:
                event, reply = watcher.call("requests.reply", {"request_id": request_id})
                if event == "result" and reply["state"] == "done":
                    break
                assert time.monotonic() - started < 120, "the silent client's job was never ended"
                time.sleep(0.2)
            assert reply["event"] == "error" and reply["content"]["code"] == "CANCELLED"
            assert "heartbeat" in reply["content"]["message"]
        finally:
            watcher.close()
            silent.close()
