"""Model replicas on Ray (`serve --ray`): spreading, a replica killed mid-job, results that outlive it, versions.

The daemon here starts its own local Ray instance (`--ray` with no address), so that path is tested too;
the parametrized service modules join the session's cluster instead.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ecco_client
from tests.daemon_process import DaemonProcess
from tests.service.conftest import ray_args
from tests.service.multiuser_support import add_user

PROMPTS = ["The capital of France is", "Hello world", "the cat sat on the mat and", "Numbers like"]
RESTART_DEADLINE_S = 120.0
LONG = 4000  # new tokens of a generation that must still run when status is read (cancelled after)


@dataclass
class Replicated:
    daemon: DaemonProcess
    files: dict[str, Path]


@pytest.fixture(scope="module")
def replicated(tiny_llama, tmp_path_factory) -> Iterator[Replicated]:
    args = [*ray_args(None), "--max-new-tokens", str(LONG), "--max-input-tokens", str(2 * LONG)]
    with DaemonProcess(tmp_path_factory.mktemp("replicas"), [str(tiny_llama)], args) as daemon:
        files = {"admin": daemon.connection_file, "alice": add_user(daemon.state_dir, "alice"),
                 "bob": add_user(daemon.state_dir, "bob")}
        yield Replicated(daemon, files)


def replicas(admin: Any) -> list[dict[str, Any]]:
    return [row for row in admin.status()["executor"] if row["kind"] == "ray"]


def wait_for(admin: Any, what: str, check: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + RESTART_DEADLINE_S
    while True:
        rows = replicas(admin)
        if check(rows):
            return rows
        assert time.monotonic() < deadline, f"{what}: never happened; replicas: {rows}"
        time.sleep(0.1)


def lens_top(data: dict[str, Any]) -> list[list[tuple[int, float]]]:
    return [[(c["id"], round(c["prob"], 5)) for c in layer["top"]] for layer in data["positions"][0]["layers"]]


def first_token(handle: Any) -> None:
    next(e for e in handle.events() if e.name == "token")


def assert_one_long_job_each(client: Any, admin: Any) -> None:
    """Two long generations at once run on the two replicas, one each (the least loaded takes the second)."""
    handles = [client.request("generate", {"prompt": p, "generate": LONG}) for p in PROMPTS[:2]]
    for handle in handles:
        first_token(handle)
    assert sorted(r["running"] for r in replicas(admin)) == [1, 1]
    for handle in handles:
        handle.cancel()
        with pytest.raises(ecco_client.Cancelled):
            handle.result()


def test_status_lists_each_replica_and_jobs_go_to_the_least_loaded(replicated):
    with ecco_client.connect(connection_file=replicated.files["admin"], timeout=30) as admin, \
            ecco_client.connect(connection_file=replicated.files["alice"], timeout=30) as alice:
        rows = replicas(admin)
        model = admin.list_models()[0]["name"]
        assert [r["name"] for r in rows] == [f"{model}/0", f"{model}/1"]
        for row in rows:
            assert row["state"] == "alive" and row["node"] == "127.0.0.1" and row["device"] == "cpu"
            assert isinstance(row["pid"], int) and row["pid"] != replicated.daemon.process.pid
            assert row["queue_length"] == 0 and row["restarts"] == 0
        assert len({r["pid"] for r in rows}) == 2
        assert "executor" not in alice.status()  # replicas are for the admin's eyes
        # One long job each: the second went to the replica that had none.
        assert_one_long_job_each(alice, admin)


def test_a_replica_killed_mid_job_fails_that_job_only_and_restarts(replicated):
    with ecco_client.connect(connection_file=replicated.files["admin"], timeout=60) as admin, \
            ecco_client.connect(connection_file=replicated.files["alice"], timeout=60) as alice, \
            ecco_client.connect(connection_file=replicated.files["bob"], timeout=60) as bob:
        solo = {p: admin.model().generate(p, generate=8).token_ids.tolist() for p in PROMPTS}
        alices = admin.model().generate("another long story", generate=300).token_ids.tolist()
        doomed = bob.request("generate", {"prompt": "a long story", "generate": LONG})
        first_token(doomed)
        victim = next(r for r in replicas(admin) if r["running"] == 1)
        other = alice.request("generate", {"prompt": "another long story", "generate": 300})
        first_token(other)  # on the other replica: the least loaded
        os.kill(victim["pid"], signal.SIGKILL)
        with pytest.raises(ecco_client.RemoteError) as info:
            doomed.result()
        assert info.value.code == "REPLICA_LOST" and victim["name"] in info.value.message
        # Alice's job on the other replica went on: all its tokens, the same as alone.
        assert other.result()["token_ids"].tolist() == alices
        # The next requests succeed, with the results they had before.
        for prompt in PROMPTS:
            assert bob.model().generate(prompt, generate=8).token_ids.tolist() == solo[prompt]
        rows = wait_for(admin, "the restart", lambda rows: any(
            r["name"] == victim["name"] and r["state"] == "alive" and r["restarts"] >= 1
            and r["pid"] not in (None, victim["pid"]) for r in rows))
        assert all(r["state"] == "alive" for r in rows)
        assert_one_long_job_each(alice, admin)  # both replicas take work again


def test_views_of_a_result_work_after_the_replica_that_computed_it_died(replicated):
    with ecco_client.connect(connection_file=replicated.files["alice"], timeout=60) as alice, \
            ecco_client.connect(connection_file=replicated.files["admin"], timeout=60) as admin:
        served = {r["name"]: r["served"] for r in replicas(admin)}
        out = alice.model().analyze("one two three four five six", attribution=["grad_x_input"])
        computed_by = next(r for r in replicas(admin) if r["served"] > served[r["name"]])
        before = (out.layer_predictions(position=3, topk=3).data, out.rankings().data["ranks"],
                  out.run_nmf(n_components=2).factors)
        os.kill(computed_by["pid"], signal.SIGKILL)
        wait_for(admin, "the replica's death", lambda rows: any(
            r["name"] == computed_by["name"] and (r["state"] != "alive" or r["pid"] != computed_by["pid"])
            for r in rows))
        after = (out.layer_predictions(position=3, topk=3).data, out.rankings().data["ranks"],
                 out.run_nmf(n_components=2).factors)
        assert lens_top(after[0]) == lens_top(before[0])
        np.testing.assert_array_equal(after[1], before[1])
        np.testing.assert_allclose(after[2], before[2], rtol=1e-4, atol=1e-6)
        # Still private: bob's request for alice's result is NOT_FOUND as for an id that never existed.
        with ecco_client.connect(connection_file=replicated.files["bob"], timeout=30) as bob:
            with pytest.raises(ecco_client.NotFound):
                bob.call("view", {"result_id": out.result_id, "view": "rankings"})


def test_a_daemon_and_replicas_of_different_versions_refuse_to_work_together(ray_cluster, tiny_llama, tmp_path,
                                                                              monkeypatch):
    for name, value in ray_cluster.env.items():  # before Ray is imported here: it reads them once
        monkeypatch.setenv(name, value)
    import ray

    from ecco_daemon.config import DaemonConfig
    from ecco_daemon.replica import ModelReplica
    from ecco_daemon.runtime.context import RuntimeContext
    from ecco_daemon.runtime.ray_cluster import connect
    from ecco_daemon.runtime.ray_executor import RayExecutor
    from ecco_daemon.runtime.remote_lane import ReplicaHandle
    from ecco_daemon.server.errors import OperationError

    connection = connect(ray_cluster.address)
    try:
        config = DaemonConfig(state_dir=tmp_path, ray_address=ray_cluster.address)
        # A daemon of another version (0.0.0-other) starts a replica of this one (0.1.0).
        actor = ray.remote(ModelReplica).options(num_cpus=0.25).remote(
            config, {"spec": str(tiny_llama), "name": "tiny"}, "0.0.0-other", 1)
        # The replica's side: it loads nothing and refuses all work, saying why.
        hello = ray.get(actor.hello.remote(), timeout=120)
        assert "version mismatch" in hello["refusal"] and "0.0.0-other" in hello["refusal"]
        assert ray.get(actor.admit.remote("b", ("generate", "tiny"), [])).failed["message"] == hello["refusal"]
        # The daemon's side: it refuses the replica (and ends it) with the same clear sentence.
        ctx = RuntimeContext(config=config, models=None, store=None, scheduler=None, users=None)  # type: ignore[arg-type]
        executor = RayExecutor(ctx, ModelReplica, version="0.0.0-other")
        with pytest.raises(OperationError) as info:
            executor.welcome([ReplicaHandle("tiny/0", "tiny", actor)])
        assert "version mismatch" in info.value.message and "runs 0.1.0" in info.value.message
    finally:
        connection.close()
