"""Several users on one daemon and one model: their own keys, their own results, fair and batched work.

Every reply is checked against its request: greedy generations against the same prompt's solo result,
seeded samples against the same seed's solo sample, streamed tokens against the final result.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import ecco_client
from tests.daemon_process import DaemonProcess
from tests.service.multiuser_support import RawClient, add_user, user_cli

EXECUTORS = ("thread", "ray")  # every test here also runs on model replicas (tests/service/conftest.py)
PROMPTS = ["The capital of France is", "Hello world", "the cat sat on the mat and", "Numbers like"]
LENGTHS = [3, 5, 8, 12, 16]
SAMPLE_TOKENS = 6


@dataclass
class Users:
    daemon: DaemonProcess
    files: dict[str, Path]  # user name -> connection file


@pytest.fixture(scope="module")
def users(tiny_llama, tmp_path_factory, executor) -> Users:
    with DaemonProcess(tmp_path_factory.mktemp("multiuser"), [str(tiny_llama)], executor.args,
                       env=executor.env) as daemon:
        # Added while the daemon runs: it picks them up without a restart.
        files = {"admin": daemon.connection_file,
                 "alice": add_user(daemon.state_dir, "alice"),
                 "bob": add_user(daemon.state_dir, "bob")}
        yield Users(daemon, files)


@pytest.fixture(scope="module")
def solo(users) -> dict:
    """Each prompt's greedy tokens and each seed's sample, computed one request at a time."""
    expected: dict = {}
    with ecco_client.connect(connection_file=users.files["admin"], timeout=30) as client:
        lm = client.model()
        for prompt in PROMPTS:
            expected[prompt] = lm.generate(prompt, generate=max(LENGTHS)).token_ids.tolist()
        for seed in range(16):
            out = lm.generate(PROMPTS[seed % 4], generate=SAMPLE_TOKENS, do_sample=True, seed=seed,
                              temperature=1.2)
            expected[("sample", seed)] = out.token_ids.tolist()
    return expected


def test_user_add_writes_an_owner_only_file_the_running_daemon_accepts_and_remove_revokes(users):
    state = users.daemon.state_dir
    path = add_user(state, "carol")
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    info = json.loads(path.read_text())
    assert info["user"] == "carol" and info["address"] == users.daemon.info.address and len(info["key"]) == 64
    assert user_cli(state, "add", "carol").returncode != 0  # names are unique
    listing = user_cli(state, "list").stdout.split("\n")
    assert "carol\tuser" in listing and "admin\tadmin" in listing
    with ecco_client.connect(connection_file=path, timeout=10) as carol:
        assert carol.status()["user"] == {"name": "carol", "role": "user"}
        assert user_cli(state, "remove", "carol").returncode == 0
        with pytest.raises(ecco_client.Unauthorized):
            carol.ping()
    assert not path.exists()


def test_admin_role_and_user_role(users):
    with ecco_client.connect(connection_file=users.files["alice"], timeout=10) as alice:
        with pytest.raises(ecco_client.Forbidden):
            alice.load_model("smollm2-135m")
        with pytest.raises(ecco_client.Forbidden):
            alice.call("models.unload", {"model": "tiny-llama"})
        with pytest.raises(ecco_client.Forbidden):
            alice.call("shutdown")
        assert "security" not in alice.status()


def test_a_user_sees_and_cancels_only_their_own_jobs(users):
    with ecco_client.connect(connection_file=users.files["alice"], timeout=20) as alice, \
            ecco_client.connect(connection_file=users.files["bob"], timeout=20) as bob, \
            ecco_client.connect(connection_file=users.files["admin"], timeout=20) as admin:
        long = bob.request("generate", {"prompt": "a long story", "generate": 1000})
        next(e for e in long.events() if e.name == "token")
        mine = alice.status()["queue"]
        assert all(j["user"] == "alice" for j in mine["running"] + mine["queued"])
        assert {"id": long.request_id, "user": "bob", "op": "generate"} in admin.status()["queue"]["running"]
        # Alice cannot touch bob's request: to her it does not exist.
        assert alice.call("cancel", {"target": long.request_id}) == {
            "target": long.request_id, "cancelled": False, "state": "unknown"}
        assert not long.stream.done
        assert bob.call("cancel", {"target": long.request_id})["cancelled"] is True
        with pytest.raises(ecco_client.Cancelled):
            long.result()


def test_other_work_runs_between_the_steps_of_a_long_batch(users, tiny_llama):
    with ecco_client.connect(connection_file=users.files["alice"], timeout=20) as alice, \
            ecco_client.connect(connection_file=users.files["admin"], timeout=20) as admin:
        long = alice.request("generate", {"prompt": "a long story", "generate": 1000})
        next(e for e in long.events() if e.name == "token")
        # A job of another kind (a model load, here of the model already loaded) is next in turn:
        # it is served between two decoding steps instead of after the 1000 tokens.
        assert admin.load_model(str(tiny_llama))["family"] == "causal"
        assert not long.stream.done
        long.cancel()
        with pytest.raises(ecco_client.Cancelled):
            long.result()


CHILD = """
import json, sys, ecco_client
with ecco_client.connect(connection_file=sys.argv[1], timeout=60) as client:
    out = client.model().generate(sys.argv[2], generate=int(sys.argv[3]))
    info = client.call("results.info", {"result_id": out.result_id})
    print(json.dumps({"user": client.status()["user"]["name"], "result_id": out.result_id,
                      "token_ids": out.token_ids.tolist(), "kind": info["kind"]}))
"""


def test_two_users_in_two_processes_share_the_model_and_see_only_their_own_results(users, solo):
    children = {
        name: subprocess.Popen([sys.executable, "-c", CHILD, str(users.files[name]), prompt, "12"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, prompt in (("alice", PROMPTS[0]), ("bob", PROMPTS[2]))
    }
    outputs = {}
    for name, child in children.items():
        stdout, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr
        outputs[name] = json.loads(stdout)
    assert outputs["alice"]["user"] == "alice" and outputs["bob"]["user"] == "bob"
    assert outputs["alice"]["token_ids"] == solo[PROMPTS[0]][: len(outputs["alice"]["token_ids"])]
    assert outputs["bob"]["token_ids"] == solo[PROMPTS[2]][: len(outputs["bob"]["token_ids"])]
    for me, other in (("alice", "bob"), ("bob", "alice")):
        with ecco_client.connect(connection_file=users.files[me], timeout=10) as client:
            assert client.call("results.info", {"result_id": outputs[me]["result_id"]})["kind"] == "generation"
            with pytest.raises(ecco_client.NotFound) as info:
                client.call("results.info", {"result_id": outputs[other]["result_id"]})
            assert info.value.code == "NOT_FOUND"
            with pytest.raises(ecco_client.NotFound):
                client.call("results.release", {"result_id": outputs[other]["result_id"]})
    with ecco_client.connect(connection_file=users.files["admin"], timeout=10) as admin:
        models = admin.list_models()
        assert len(models) == 1  # one copy of the model, however many users


def run_mixed_client(index: int, path: Path, solo: dict, problems: list[str]) -> None:
    """One client's mixed requests, all in flight at once on one socket; every event checked."""
    client = RawClient.from_file(path)
    try:
        prompt, length = PROMPTS[index % 4], LENGTHS[index % 5]
        ids = {
            "greedy": client.send("generate", {"prompt": prompt, "generate": length, "alternatives": 3}),
            "sample": client.send("generate", {"prompt": PROMPTS[index % 4], "generate": SAMPLE_TOKENS,
                                               "do_sample": True, "seed": index, "temperature": 1.2}),
            "long": client.send("generate", {"prompt": "once upon a time", "generate": 400}),
            "ping": client.send("ping"),
            "status": client.send("status"),
            "bad_type": client.send("generate", {"prompt": "x", "generate": "ten"}),
            "bad_ids": client.send("generate", {"input_ids": [10**9], "generate": 2}),
        }
        cancel_id = None
        pending = set(ids.values())
        deadline = time.monotonic() + 180
        while pending or (cancel_id is not None and not client.finished(cancel_id)):
            if time.monotonic() > deadline:
                problems.append(f"client {index}: lost replies for {sorted(pending)}")
                return
            got = client.receive(deadline - time.monotonic())
            if got is None:
                continue
            header, _ = got
            if header["id"] == ids["long"] and header["event"] == "token" and cancel_id is None:
                cancel_id = client.send("cancel", {"target": ids["long"]})
            pending = {r for r in pending if not client.finished(r)}
        check_mixed_client(index, client, ids, cancel_id, prompt, length, solo, problems)
    except AssertionError as exc:
        problems.append(f"client {index}: {exc}")
    except Exception as exc:
        problems.append(f"client {index}: {type(exc).__name__}: {exc}")
    finally:
        client.close()


def check_mixed_client(index: int, client: RawClient, ids: dict[str, str], cancel_id: str | None, prompt: str,
                       length: int, solo: dict, problems: list[str]) -> None:
    assert not client.strays, f"events for requests this client never sent: {client.strays}"
    for request_id, events in client.events.items():
        seqs = [h["seq"] for h, _ in events]
        assert seqs == list(range(len(seqs))), f"{request_id}: seq {seqs} (lost or duplicated events)"
        assert events[-1][0]["event"] in ("result", "error"), f"{request_id}: events after the terminal one"
        client.terminal(request_id)  # exactly one
        names = [h["event"] for h, _ in events]
        if client.sent[request_id][0] == "generate" and "accepted" in names:
            assert names[0] == "accepted", names
            started = names.index("progress") if "progress" in names else len(names)
            assert "queued" not in names[started:], f"{request_id}: queued after running: {names}"
    kind, greedy = client.terminal(ids["greedy"])
    assert kind == "result", greedy
    expected = solo[prompt][: greedy["n_input_tokens"] + length]
    assert np.asarray(greedy["token_ids"]).tolist() == expected, "greedy result differs from the solo run"
    streamed = [c for h, c in client.events[ids["greedy"]] if h["event"] == "token"]
    assert [t["token_id"] for t in streamed] == expected[greedy["n_input_tokens"]:]
    assert [t["position"] for t in streamed] == list(range(greedy["n_input_tokens"], len(expected)))
    kind, sample = client.terminal(ids["sample"])
    assert np.asarray(sample["token_ids"]).tolist() == solo[("sample", index)], "sample differs from solo"
    kind, long = client.terminal(ids["long"])
    assert kind == "error" and long["code"] == "CANCELLED", long
    assert cancel_id is not None and client.terminal(cancel_id)[1]["cancelled"] is True
    assert client.terminal(ids["ping"])[1]["pong"] is True
    kind, status = client.terminal(ids["status"])
    assert status["user"]["name"] == client.info.user
    if client.info.user != "admin":
        queue = status["queue"]
        assert all(j["user"] == client.info.user for j in queue["running"] + queue["queued"])
    for bad in ("bad_type", "bad_ids"):
        kind, error = client.terminal(ids[bad])
        assert kind == "error" and error["code"] == "BAD_REQUEST", error


@pytest.mark.parametrize("n_clients", [8, 16])
def test_concurrent_clients_with_mixed_requests_each_get_exactly_their_own_replies(users, solo, n_clients):
    names = ["alice", "bob", "admin"]
    problems: list[str] = []
    threads = [threading.Thread(target=run_mixed_client,
                                args=(i, users.files[names[i % 3]], solo, problems)) for i in range(n_clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    assert not any(t.is_alive() for t in threads), "a client never finished"
    assert not problems, "\n".join(problems)
    with ecco_client.connect(connection_file=users.files["admin"], timeout=10) as admin:
        assert admin.ping() < 1.0
        assert admin.status()["queue"]["length"] == 0


def test_a_request_past_the_models_positions_is_refused_while_the_batch_goes_on(users, tiny_model_factory):
    gpt2 = tiny_model_factory("gpt2")  # learned positions end at 128: past them the model fails (CUDA: for all)
    with ecco_client.connect(connection_file=users.files["admin"], timeout=30) as admin, \
            ecco_client.connect(connection_file=users.files["alice"], timeout=30) as alice:
        name = admin.load_model(str(gpt2))["name"]
        try:
            solo = admin.model(name).generate(PROMPTS[0], generate=110).token_ids.tolist()
            running = admin.request("generate", {"model": name, "prompt": PROMPTS[0], "generate": 110})
            next(e for e in running.events() if e.name == "token")
            with pytest.raises(ecco_client.RemoteError) as info:
                alice.call("generate", {"model": name, "input_ids": [7] * 124, "generate": 20})
            assert info.value.code == "TOO_LARGE" and "128 positions" in info.value.message
            assert not running.stream.done  # refused before running: the batch goes on
            assert running.result()["token_ids"].tolist() == solo
            assert alice.model(name).generate(PROMPTS[1], generate=3).n_input_tokens > 0
        finally:
            admin.call("models.unload", {"model": name})
