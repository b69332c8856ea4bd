"""The real daemon as a subprocess on loopback TCP, reached by real clients over ZeroMQ."""

from __future__ import annotations

import threading
import time

import msgpack
import pytest
import zmq
from ecco_protocol.codec import encode_message, new_request_header, split_frames
from ecco_protocol.signing import Signer
from ecco_protocol.version import MAGIC

import ecco_client

EXECUTORS = ("thread", "ray")  # every test here also runs on model replicas (tests/service/conftest.py)


@pytest.fixture()
def client(daemon):
    with ecco_client.connect(connection_file=daemon.connection_file, timeout=10) as c:
        yield c


def test_ping_and_status(client, daemon):
    assert client.ping() < 1.0
    state = client.status()
    assert state["daemon"]["protocol"] == ecco_client.PROTOCOL_VERSION
    assert [m["family"] for m in state["models"]] == ["causal"]
    assert state["user"]["role"] == "admin"
    assert state["daemon"]["address"] == daemon.info.address


def test_generate_streams_every_token_then_the_result(client):
    lm = client.model()
    streamed: list[dict] = []
    out = lm.generate("hello world", generate=6, on_token=streamed.append, alternatives=3)
    n_new = len(out.token_ids) - out.n_input_tokens
    assert 1 <= n_new <= 6
    assert [e["token_id"] for e in streamed] == out.token_ids[out.n_input_tokens:].tolist()
    assert out.probabilities.shape == (n_new,)
    assert out.alternatives["ids"].shape == (n_new, 3)
    # Greedy: the chosen token is the most likely one, and its probability is the top alternative's.
    assert (out.alternatives["ids"][:, 0] == out.token_ids[out.n_input_tokens:]).all()
    assert out.probabilities == pytest.approx(out.alternatives["probs"][:, 0], rel=1e-5)
    assert len(out.tokens) == len(out.token_ids)


def test_greedy_generation_is_deterministic_and_sampling_follows_the_seed(client):
    lm = client.model()
    a = lm.generate("the cat", generate=8)
    b = lm.generate("the cat", generate=8)
    assert a.token_ids.tolist() == b.token_ids.tolist()
    s1 = lm.generate("the cat", generate=8, do_sample=True, seed=7, temperature=1.5)
    s2 = lm.generate("the cat", generate=8, do_sample=True, seed=7, temperature=1.5)
    assert s1.token_ids.tolist() == s2.token_ids.tolist()


def test_float16_arrays_on_request(client):
    out = client.model().generate("hi", generate=3, array_dtype="float16")
    assert out.probabilities.dtype.name == "float16"
    assert out.alternatives["probs"].dtype.name == "float16"


def test_several_clients_at_once_each_get_their_own_answers(daemon):
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    prompts = {i: f"prompt number {i}" for i in range(4)}

    def run(i: int) -> None:
        try:
            with ecco_client.connect(connection_file=daemon.connection_file, timeout=20) as c:
                out = c.model().generate(prompts[i], generate=4)
                results[i] = out.token_ids.tolist()
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with ecco_client.connect(connection_file=daemon.connection_file) as c:
        for i, ids in results.items():
            assert c.model().generate(prompts[i], generate=4).token_ids.tolist() == ids


def test_cancel_a_running_generation(client):
    handle = client.request("generate", {"prompt": "a long story", "generate": 1000})
    for event in handle.events():
        if event.name == "token":
            break
    reply = handle.cancel()
    assert reply["cancelled"] is True
    with pytest.raises(ecco_client.Cancelled):
        handle.result()
    assert client.ping() < 1.0


def test_ping_answers_while_a_generation_runs(client):
    handle = client.request("generate", {"prompt": "busy", "generate": 400})
    next(e for e in handle.events() if e.name == "token")
    rtts = [client.ping() for _ in range(20)]
    assert max(rtts) < 0.5
    handle.cancel()


def test_bad_input_gets_a_stable_code_and_the_daemon_keeps_serving(client):
    with pytest.raises(ecco_client.BadRequest) as info:
        client.call("generate", {"prompt": "x", "generate": "ten"})
    assert info.value.code == "BAD_REQUEST" and "generate" in info.value.message
    with pytest.raises(ecco_client.BadRequest) as info:
        client.call("generate", {"prompt": "x", "bogus": 1})
    assert "bogus" in info.value.message
    with pytest.raises(ecco_client.BadRequest) as info:
        client.call("no.such.op")
    assert info.value.code == "UNKNOWN_OPERATION"
    with pytest.raises(ecco_client.ModelNotFound):
        client.model("nope").generate("x", generate=1)
    with pytest.raises(ecco_client.RemoteError) as info:
        client.call("generate", {"prompt": "x", "generate": 10**6})
    assert info.value.code == "TOO_LARGE"
    assert client.ping() < 1.0


def _raw_socket(address: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    return sock


def _error_of(sock: zmq.Socket) -> tuple[dict, dict]:
    raw = split_frames(sock.recv_multipart())
    return raw.header(), raw.content()


@pytest.mark.parametrize("frames", [
    [b"garbage"],
    [MAGIC, b"", b"\xc1", b"\x80"],
    [b"wrong", b"", msgpack.packb({}), msgpack.packb({})],
    [MAGIC, b"", msgpack.packb([1, 2]), msgpack.packb({})],
    [MAGIC, b"", msgpack.packb({"v": "2.0", "id": "x", "op": "ping", "user": "admin", "ts": 1.0}), b"\xc1"],
])
def test_malformed_frames_each_get_an_error_reply(daemon, client, frames):
    sock = _raw_socket(daemon.info.address)
    sock.send_multipart(frames)
    header, content = _error_of(sock)
    assert header["event"] == "error"
    assert content["code"] in {"BAD_FRAME", "UNAUTHORIZED"}
    assert content["message"]
    sock.close()
    assert client.ping() < 1.0


def test_unsigned_badly_signed_and_replayed_messages_are_refused(daemon, client):
    info = daemon.info
    sock = _raw_socket(info.address)
    header = new_request_header("ping", info.user)
    sock.send_multipart(encode_message(header, {"params": {}}, None))
    assert _error_of(sock)[1]["code"] == "UNAUTHORIZED"
    sock.send_multipart(encode_message(new_request_header("ping", info.user), {"params": {}}, Signer("wrong key")))
    assert _error_of(sock)[1]["code"] == "UNAUTHORIZED"
    signed = encode_message(new_request_header("ping", info.user), {"params": {}}, Signer(info.key))
    sock.send_multipart(signed)
    assert _error_of(sock)[0]["event"] == "result"
    sock.send_multipart(signed)
    header, content = _error_of(sock)
    assert content["code"] == "UNAUTHORIZED" and "replay" in content["message"]
    sock.close()


@pytest.mark.parametrize("version", ["1.0", "3.0", "\u00b2", "\u00b2.0", "2", "", "2.0\n", 2.0, None, [2, 0]])
def test_wrong_protocol_version_is_refused(daemon, client, version):
    """Another major, or no version at all (superscript digits included): UNSUPPORTED_VERSION, no traceback."""
    info = daemon.info
    sock = _raw_socket(info.address)
    header = new_request_header("ping", info.user)
    header["v"] = version
    sock.send_multipart(encode_message(header, {"params": {}}, Signer(info.key)))
    assert _error_of(sock)[1]["code"] == "UNSUPPORTED_VERSION"
    sock.close()
    assert client.ping() < 1.0


def test_nothing_listening_raises_daemon_unavailable(daemon, tmp_path):
    start = time.monotonic()
    with pytest.raises(ecco_client.DaemonUnavailable):
        ecco_client.connect("tcp://127.0.0.1:9", key="k", timeout=1.0)
    assert time.monotonic() - start < 5
