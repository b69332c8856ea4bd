"""Teacher-forced analyses from several users share one forward pass, and each reply equals its solo reply.

A long analysis (integrated gradients: not batchable) holds the daemon's worker while the clients'
analyses queue behind it; once the queue holds them all, the long one is cancelled and the worker takes
the compatible ones together. ``batched_with`` in each reply says how many shared the pass.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import numpy as np
import pytest

import ecco_client
from tests.daemon_process import DaemonProcess
from tests.service.multiuser_support import add_user

USERS = ("admin", "alice", "bob", "carol")
PER_REPLY_FIELDS = ("result_id", "batched_with")  # differ between a solo and a batched run, by design


@pytest.fixture(scope="module")
def shared(tiny_llama, tiny_model_factory, tmp_path_factory) -> Iterator[tuple[DaemonProcess, dict]]:
    with DaemonProcess(tmp_path_factory.mktemp("analyze-batching"), [str(tiny_llama)]) as daemon:
        files = {"admin": daemon.connection_file}
        files.update({name: add_user(daemon.state_dir, name) for name in USERS[1:]})
        with ecco_client.connect(connection_file=files["admin"], timeout=30) as admin:
            admin.load_model(str(tiny_model_factory("gpt2")), name="tiny-gpt2")
        yield daemon, files


def _ids(n: int, seed: int) -> list[int]:
    return np.random.default_rng(seed).integers(3, 200, n).tolist()


def assert_same_reply(batched: Any, solo: Any, path: str = "reply") -> None:
    """Equal structure; float arrays within 1e-5, everything else exactly."""
    if isinstance(solo, dict):
        assert isinstance(batched, dict) and set(batched) == set(solo), path
        for key in solo:
            assert_same_reply(batched[key], solo[key], f"{path}.{key}")
    elif isinstance(solo, np.ndarray) and solo.dtype.kind == "f":
        np.testing.assert_allclose(batched, solo, atol=1e-5, rtol=1e-5, err_msg=path)
    elif isinstance(solo, np.ndarray):
        np.testing.assert_array_equal(batched, solo, err_msg=path)
    elif isinstance(solo, list | tuple):
        assert len(batched) == len(solo), path
        for i, (a, b) in enumerate(zip(batched, solo, strict=True)):
            assert_same_reply(a, b, f"{path}[{i}]")
    else:
        assert batched == solo, path


def _wait_until_queued(admin: Any, request_ids: set[str], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        queued = {job["id"] for job in admin.status()["queue"]["queued"]}
        if request_ids <= queued:
            return
        assert time.monotonic() < deadline, f"still not queued: {request_ids - queued}"
        time.sleep(0.05)  # a poll interval against the deadline above, not a wait for something to happen


def _hold_worker(client: Any, model: str) -> Any:
    """A long, unbatchable analysis, started; returns its handle (cancel it to free the worker)."""
    handle = client.request("analyze", {"model": model, "input_ids": _ids(300, 99),
                                        "attribution": ["integrated_gradients"], "steps": 1000})
    next(e for e in handle.events() if e.name == "progress" and e.content.get("stage") == "analysis")
    return handle


def test_concurrent_same_length_analyses_run_together_and_each_reply_equals_its_solo_reply(shared):
    daemon, files = shared
    # (user, input ids, options): four of 12 tokens batch together, two of 10 together, one with
    # attention (not batchable) runs alone.
    work = [(USERS[i % 4], _ids(12, i), {}) for i in range(4)]
    work[1][2]["activation_layers"] = [0]
    work[2][2]["topk"] = 3
    work += [(USERS[i % 4], _ids(10, 10 + i), {"array_dtype": "float16"}) for i in range(2)]
    work.append(("alice", _ids(12, 20), {"attention": True}))
    with ExitStack() as stack:
        clients = {name: stack.enter_context(ecco_client.connect(connection_file=files[name], timeout=60))
                   for name in USERS}
        admin = clients["admin"]
        model = next(m["name"] for m in admin.list_models() if m["name"] != "tiny-gpt2")
        solo = []
        for user, ids, options in work:
            reply = clients[user].call("analyze", {"model": model, "input_ids": ids, **options})
            assert reply["batched_with"] == 1
            solo.append(reply)

        blocker = _hold_worker(admin, model)
        handles = [clients[user].request("analyze", {"model": model, "input_ids": ids, **options})
                   for user, ids, options in work]
        _wait_until_queued(admin, {h.request_id for h in handles})
        blocker.cancel()
        with pytest.raises(ecco_client.Cancelled):
            blocker.result()

        for (user, ids, options), handle, expected in zip(work, handles, solo, strict=True):
            reply = handle.result()
            batched = 1 if options.get("attention") else (4 if len(ids) == 12 else 2)
            assert reply["batched_with"] == batched, (user, len(ids))
            assert reply["result_id"] != expected["result_id"]
            assert_same_reply({k: v for k, v in reply.items() if k not in PER_REPLY_FIELDS},
                              {k: v for k, v in expected.items() if k not in PER_REPLY_FIELDS})
            # The batched run is stored for its own user: later views come from it.
            view = clients[user].call("view", {"result_id": reply["result_id"], "view": "rankings"})
            np.testing.assert_array_equal(view["data"]["rankings"], expected["rankings"])
        # Each user's results are theirs only.
        with pytest.raises(ecco_client.NotFound):
            clients["bob"].call("results.info", {"result_id": handles[1].result()["result_id"]})
        assert admin.status()["queue"]["length"] == 0


def test_text_longer_than_the_models_positions_is_refused_before_running(shared):
    _, files = shared
    with ecco_client.connect(connection_file=files["alice"], timeout=30) as alice:
        with pytest.raises(ecco_client.RemoteError) as info:
            alice.call("analyze", {"model": "tiny-gpt2", "input_ids": _ids(129, 1)})
        assert info.value.code == "TOO_LARGE" and "128 positions" in info.value.message
        fits = alice.call("analyze", {"model": "tiny-gpt2", "input_ids": _ids(128, 1)})
        assert len(fits["tokens"]) == 128 and fits["batched_with"] == 1
