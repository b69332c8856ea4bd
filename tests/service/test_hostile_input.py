"""One user's hostile input does not stall others, costs no unbounded memory, and cannot forge log lines."""

from __future__ import annotations

import time

import msgpack
from ecco_protocol.codec import MAX_HEADER_BYTES, encode_message, new_request_header, split_frames
from ecco_protocol.signing import Signer
from ecco_protocol.version import MAGIC

from tests.service.multiuser_support import RawClient, add_user


def _next_terminal(client: RawClient, timeout_s: float = 60.0) -> str:
    """The request id of the next final reply this client receives."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = client.receive(deadline - time.monotonic())
        if got is not None and got[0]["event"] in ("result", "error"):
            return got[0]["id"]
    raise AssertionError("no final reply")


def test_another_users_ping_is_answered_while_huge_prompts_are_tokenized(daemon):
    hostile = RawClient(daemon.info)
    bystander = RawClient.from_file(add_user(daemon.state_dir, "bystander"), address=daemon.info.address)
    try:
        prompt = "lorem ipsum dolor sit amet " * 37_000  # 1 MB, under the text limit: tokenizing takes a while
        hostile_ids = [hostile.send("analyze", {"text": prompt}) for _ in range(4)]
        time.sleep(0.05)  # the huge messages are on the daemon's socket before the ping
        ping_id = bystander.send("ping")
        assert _next_terminal(bystander) == ping_id
        finished = {_next_terminal(hostile) for _ in hostile_ids}
        assert finished == set(hostile_ids)
        assert all(hostile.terminal(i)[1]["code"] == "TOO_LARGE" for i in hostile_ids)  # tokenized, then refused
        # The ping did not wait for the tokenizing: the daemon answered it before any huge prompt was refused.
        first_refusal = min(h["ts"] for i in hostile_ids for h, _ in hostile.events[i] if h["event"] == "error")
        ping_reply = next(h for h, _ in bystander.events[ping_id] if h["event"] == "result")
        assert ping_reply["ts"] < first_refusal
    finally:
        hostile.close()
        bystander.close()


def test_an_oversized_header_is_refused_before_it_is_decoded(daemon):
    client = RawClient(daemon.info)
    try:
        header = msgpack.packb({"v": "2.0", "id": "x", "op": "ping", "user": "a" * (MAX_HEADER_BYTES * 4)})
        client.socket.send_multipart([MAGIC, b"", header, msgpack.packb({})])
        raw = split_frames(client.socket.recv_multipart())
        content = raw.content()
        assert raw.header()["event"] == "error" and content["code"] == "BAD_FRAME"
        assert "header frame is" in content["message"] and len(content["message"]) < 200
        assert client.call("ping")[0] == "result"
    finally:
        client.close()


def test_untrusted_text_cannot_forge_log_lines_or_flood_the_log(daemon):
    client = RawClient(daemon.info)
    try:
        header = new_request_header("ping", "x" * 3000)  # an unknown, long user name (the header limit holds it)
        header["id"] = "evil\n2026-01-01 00:00:00 INFO forged: all is well"
        client.socket.send_multipart(encode_message(header, {"params": {}}, Signer("k" * 64)))
        raw = split_frames(client.socket.recv_multipart())
        assert raw.content()["code"] == "UNAUTHORIZED"
        assert len(raw.content()["message"]) < 300
        client.call("ping")  # the daemon has logged the refusal by now
        log = daemon.log()
        assert "evil\\n2026-01-01" in log  # logged escaped, on one line
        assert not any(line.startswith("2026-01-01 00:00:00 INFO forged") for line in log.splitlines())
        assert "x" * 60 in log and "x" * 1000 not in log  # logged, truncated
    finally:
        client.close()


def test_a_frame_over_the_message_limit_is_dropped_unread_and_others_go_on(tiny_llama, tmp_path):
    """ZeroMQ's own limit: the sender is disconnected before the daemon allocates for its frame."""
    from tests.daemon_process import DaemonProcess

    with DaemonProcess(tmp_path, [str(tiny_llama)], extra_args=["--max-message-mb", "1"]) as process:
        flooder, bystander = RawClient(process.info), RawClient(process.info)
        try:
            flooder.socket.send_multipart([MAGIC, b"", b"\x80", b"\x00" * (3 * 2**20)])  # 3 MiB: over twice
            assert flooder.socket.poll(1500) == 0  # never read, so never answered
            assert bystander.call("ping")[0] == "result"
            # Signed and over the limit, but under twice it: read, and answered.
            event, content = bystander.call("analyze", {"text": "word " * 300_000})
            assert event == "error" and content["code"] == "TOO_LARGE" and "--max-message-mb" in content["message"]
        finally:
            flooder.close()
            bystander.close()
