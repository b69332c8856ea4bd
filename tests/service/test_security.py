"""Refusals: each attack or abuse is refused with its stable code, never executed, and counted by the daemon.

The daemon's counts (admin ``status`` -> ``security.refusals``) are checked against this module's own
tally at the end, so a refusal that went unnoticed or uncounted fails the test.
"""

from __future__ import annotations

import collections
import json
import os
import stat
import subprocess
import sys
import time

import pytest
import zmq
from ecco_protocol.codec import encode_message, new_request_header, split_frames
from ecco_protocol.signing import Signer

import ecco_client
from ecco_client.exceptions import TooLarge
from ecco_daemon.server.curve import load_or_create_server_keys, server_keys_file
from ecco_daemon.server.users import UserStore
from tests.daemon_process import DaemonProcess
from tests.service.multiuser_support import RawClient, add_user

TALLY: collections.Counter[str] = collections.Counter()
MAX_JOB_COST = 3000


@pytest.fixture(scope="module")
def guarded(tiny_llama, tmp_path_factory):
    """One daemon for the whole module: bound to every interface, so only with CURVE, reached via loopback."""
    args = ["--curve", "--job-time-limit", "1", "--max-job-cost", str(MAX_JOB_COST)]
    with DaemonProcess(tmp_path_factory.mktemp("guarded"), [str(tiny_llama)], address="tcp://0.0.0.0:0",
                       extra_args=args) as daemon:
        daemon.alice = add_user(daemon.state_dir, "alice")  # type: ignore[attr-defined]
        daemon.loopback = "tcp://127.0.0.1:" + daemon.info.address.rsplit(":", 1)[1]  # type: ignore[attr-defined]
        yield daemon


def connect(daemon: DaemonProcess, path) -> ecco_client.Client:
    return ecco_client.connect(daemon.loopback, connection_file=path, timeout=10)  # type: ignore[attr-defined]


def raw(daemon: DaemonProcess, path) -> RawClient:
    return RawClient.from_file(path, daemon.loopback)  # type: ignore[attr-defined]


def refused(client: RawClient, frames: list, code: str) -> dict:
    client.socket.send_multipart(frames)
    deadline = time.monotonic() + 10
    while True:
        assert time.monotonic() < deadline, "no reply to a refused message"
        if client.socket.poll(100):
            raw = split_frames(client.socket.recv_multipart())
            content = raw.content()
            assert raw.header()["event"] == "error" and content["code"] == code, content
            TALLY[code] += 1
            return content


def test_wrong_key_no_signature_unknown_user_and_stale_messages_are_refused(guarded):
    client = raw(guarded, guarded.connection_file)
    user = client.info.user
    ping = {"params": {}}
    refused(client, encode_message(new_request_header("ping", user), ping, Signer("0" * 64)), "UNAUTHORIZED")
    refused(client, encode_message(new_request_header("ping", user), ping, None), "UNAUTHORIZED")
    refused(client, encode_message(new_request_header("ping", "mallory"), ping, Signer("0" * 64)), "UNAUTHORIZED")
    stale = new_request_header("ping", user)
    stale["ts"] -= 3600
    message = refused(client, encode_message(stale, ping, client.signer), "UNAUTHORIZED")
    assert "timestamp" in message["message"]
    # A message signed with alice's key but claiming to be the admin is a wrong key, too.
    alice = json.loads(guarded.alice.read_text())
    refused(client, encode_message(new_request_header("shutdown", user), ping, Signer(alice["key"])), "UNAUTHORIZED")
    assert client.call("ping")[0] == "result"  # refusals never stop the daemon
    client.close()
    assert guarded.log().count("ecco_daemon.security: refused a message") >= 5  # and each is logged


def test_a_replayed_message_is_refused_and_not_executed(guarded):
    client = raw(guarded, guarded.alice)
    header = new_request_header("generate", client.info.user)
    frames = encode_message(header, {"params": {"prompt": "hello", "generate": 2}}, client.signer)
    client.sent[header["id"]] = ("generate", {})
    client.socket.send_multipart(frames)
    deadline = time.monotonic() + 30
    while not client.finished(header["id"]):
        assert time.monotonic() < deadline
        client.receive(1.0)
    message = refused(client, frames, "UNAUTHORIZED")
    assert "replay" in message["message"]
    with connect(guarded, guarded.alice) as alice:
        assert alice.status()["queue"]["running"] == []  # the replay never ran
    client.close()


def test_another_users_result_id_is_not_found(guarded):
    with connect(guarded, guarded.connection_file) as admin, \
            connect(guarded, guarded.alice) as alice:
        theirs = admin.model().generate("secret", generate=3).result_id
        mine = alice.model().generate("mine", generate=3).result_id
        for op in ("results.info", "results.release"):
            with pytest.raises(ecco_client.NotFound):
                alice.call(op, {"result_id": theirs})
            TALLY["NOT_FOUND"] += 1
        with pytest.raises(ecco_client.NotFound):
            admin.call("results.info", {"result_id": mine})  # admins see queues, not others' results
        TALLY["NOT_FOUND"] += 1
        assert admin.call("results.info", {"result_id": theirs})["kind"] == "generation"


def test_oversized_requests_are_too_large(guarded):
    with connect(guarded, guarded.alice) as alice:
        with pytest.raises(TooLarge):
            alice.call("generate", {"prompt": "x", "generate": 10**6})  # past --max-new-tokens
        TALLY["TOO_LARGE"] += 1
        with pytest.raises(TooLarge) as info:
            alice.call("generate", {"input_ids": [5] * (MAX_JOB_COST + 10), "generate": 1})  # past --max-job-cost
        assert "work units" in info.value.message
        TALLY["TOO_LARGE"] += 1
        assert alice.ping() < 1.0


def test_admin_only_operations_and_remote_code_are_refused(guarded):
    with connect(guarded, guarded.alice) as alice:
        with pytest.raises(ecco_client.Forbidden):
            alice.load_model("/etc")
        TALLY["FORBIDDEN"] += 1
    with connect(guarded, guarded.connection_file) as admin:
        # Not allowed for this model at start (serve --trust-remote-code MODEL): refused before loading.
        with pytest.raises(ecco_client.Forbidden) as info:
            admin.load_model("some/hub-model", trust_remote_code=True)
        assert "--trust-remote-code" in info.value.message


def test_a_job_past_its_time_limit_ends_with_timeout_and_others_keep_running(guarded):
    with connect(guarded, guarded.alice) as alice:
        slow = alice.request("generate", {"prompt": "long", "generate": 1000})
        quick = alice.model().generate("short", generate=3)
        assert len(quick.token_ids) > quick.n_input_tokens
        with pytest.raises(ecco_client.RemoteError) as info:
            slow.result()
        assert info.value.code == "TIMEOUT" and "time limit" in info.value.message
        assert alice.ping() < 1.0


def test_binding_beyond_loopback_without_curve_refuses_to_start(tmp_path):
    state = tmp_path / "state"
    done = subprocess.run([sys.executable, "-m", "ecco_daemon.cli", "--state-dir", str(state), "serve",
                           "--address", "tcp://0.0.0.0:0", "--no-model"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode != 0
    assert "requires CURVE" in done.stderr
    assert not (state / "connection.json").exists()
    TALLY["BIND_REFUSED"] += 1


def test_curve_end_to_end_on_a_wildcard_bind(guarded):
    info = guarded.info
    assert info.server_public_key and len(info.server_public_key) == 40
    bob_file = add_user(guarded.state_dir, "bob")
    assert json.loads(bob_file.read_text())["server_public_key"] == info.server_public_key
    with connect(guarded, bob_file) as bob:
        streamed = []
        out = bob.model().generate("encrypted", generate=4, on_token=streamed.append)
        assert [t["token_id"] for t in streamed] == out.token_ids[out.n_input_tokens:].tolist()
    # Knowing the HMAC key is not enough: without the server's public key there is no handshake.
    with pytest.raises(ecco_client.DaemonUnavailable, match="requires CURVE encryption"):
        ecco_client.connect(guarded.loopback, key=info.key, user=info.user, timeout=1.5)
    plain = zmq.Context.instance().socket(zmq.DEALER)
    plain.setsockopt(zmq.LINGER, 0)
    plain.connect(guarded.loopback)
    plain.send_multipart(encode_message(new_request_header("ping", info.user), {"params": {}}, Signer(info.key)),
                         zmq.NOBLOCK)
    assert plain.poll(1000) == 0
    plain.close()
    # The keypair is kept, so a restart on the same state folder keeps the public key users hold.
    assert load_or_create_server_keys(guarded.state_dir).public_key == info.server_public_key
    assert stat.S_IMODE(server_keys_file(guarded.state_dir).stat().st_mode) == 0o600


def test_the_user_store_follows_changes_made_by_another_process(tmp_path):
    daemon_view, cli_view = UserStore(tmp_path / "users.json"), UserStore(tmp_path / "users.json")
    assert daemon_view.get("dave") is None
    dave = cli_view.add("dave")
    assert daemon_view.get("dave") == dave  # picked up without a restart
    assert cli_view.remove("dave") and daemon_view.get("dave") is None  # and revoked at once
    for bad in ("", "../x", ".hidden", "a b"):
        with pytest.raises(ValueError):
            cli_view.add(bad)


def test_every_refusal_was_counted_by_the_daemon(guarded):
    with connect(guarded, guarded.connection_file) as admin:
        counted = admin.status()["security"]["refusals"]
    expected = {code: n for code, n in TALLY.items() if code != "BIND_REFUSED"}
    assert counted == expected
    print("refusals counted:", dict(sorted(TALLY.items())))
