"""The live daemon under fuzzing: plans encoded and sent, every reply read, and the daemon checked after each batch.

Why these checks: a request is never left unanswered, and is answered exactly once; INTERNAL means a bug;
after any batch the daemon still answers a ping correctly. A signed request's reply is verified with its
sender's key; a reply to a message that could not be authenticated is unsigned, so it is only read.
"""

from __future__ import annotations

import collections
import time
import uuid
from typing import Any

import zmq
from ecco_protocol.codec import MAX_HEADER_BYTES, FrameError, encode_message, new_request_header, split_frames
from ecco_protocol.connection_file import ConnectionInfo
from ecco_protocol.signing import SignatureError, Signer

from ecco_daemon.analysis.service import VIEWS
from tests.fuzz.counts import Counts
from tests.fuzz.plans import DROP, Plan
from tests.fuzz.values import Ref

TERMINAL = ("result", "error")
RECENT = 64  # live result and request ids kept for references


class Target:
    """One DEALER to the daemon; the user's key signs most messages, the admin's only harmless ones."""

    def __init__(self, user: ConnectionInfo, admin: ConnectionInfo, models: list[str], reply_timeout_s: float = 30.0):
        self.user, self.admin = user, admin
        self.signers = {False: Signer(user.key), True: Signer(admin.key)}
        self.models = models
        self.reply_timeout_s = reply_timeout_s
        self.counts = Counts()
        self.results: collections.deque[str] = collections.deque(maxlen=RECENT)
        self.analyses: collections.deque[str] = collections.deque(maxlen=RECENT)
        self.requests: collections.deque[str] = collections.deque(maxlen=RECENT)
        self.socket = self._connect()

    def _connect(self) -> zmq.Socket:
        socket = zmq.Context.instance().socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.connect(self.user.address)
        return socket

    def close(self) -> None:
        self.socket.close(linger=0)

    def reconnect(self, user: ConnectionInfo, admin: ConnectionInfo) -> None:
        """After the daemon was restarted (a death): new address and keys, fresh socket."""
        self.close()
        self.user, self.admin = user, admin
        self.signers = {False: Signer(user.key), True: Signer(admin.key)}
        self.socket = self._connect()

    # ------------------------------------------------------------------------------------------ sending

    def run_batch(self, batch: list[Plan]) -> Counts:
        """Send every plan, then read until each is answered (or the deadline passes); counts accumulate."""
        expected: dict[str, Plan] = {}
        anonymous: list[Plan] = []
        for plan in batch:
            frames, request_id = self.encode(plan)
            self.socket.send_multipart(frames)
            self.counts.frames += 1
            if request_id is not None:
                expected[request_id] = plan
                self.requests.append(request_id)
            else:
                anonymous.append(plan)
        self._collect(expected, anonymous)
        self.counts.batches += 1
        return self.counts

    def encode(self, plan: Plan) -> tuple[list[Any], str | None]:
        """The plan's frames, signed now; and the request id its answer will carry (None when unsure)."""
        if plan.kind == "junk":
            return list(plan.frames), None
        request_id = uuid.uuid4().hex
        as_admin = plan.as_admin and plan.kind == "request"
        header = new_request_header(plan.op, (self.admin if as_admin else self.user).user, request_id)
        for name, value in plan.header_changes:
            header.pop(name, None) if value == DROP else header.__setitem__(name, value)
        params = self._resolve(plan.params)
        content = plan.content if plan.kind == "content" else {
            "params": harmless(params, self.models) if as_admin else params}
        signer = self.signers[as_admin]
        frames = encode_message(header, content, signer)
        frames += list(plan.buffers)
        if plan.buffers:
            frames[1] = signer.sign(frames[2:])
        if plan.mutation is not None:
            return plan.mutation.apply(frames, signer), None
        readable = header.get("id") == request_id and len(frames[2]) <= MAX_HEADER_BYTES
        return frames, request_id if readable else None

    def _resolve(self, value: Any) -> Any:
        """References replaced by live ids."""
        if isinstance(value, Ref):
            pool = {"result": self.results, "analysis": self.analyses, "request": self.requests,
                    "model": self.models}[value.kind]
            return pool[value.pick % len(pool)] if pool else "none-yet"
        if isinstance(value, dict):
            return {k: self._resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        return value

    # ------------------------------------------------------------------------------------------ reading

    def _collect(self, expected: dict[str, Plan], anonymous: list[Plan]) -> None:
        answered: collections.Counter[str] = collections.Counter()
        other = 0
        deadline = time.monotonic() + self.reply_timeout_s
        while (set(expected) - set(answered) or other < len(anonymous)) and time.monotonic() < deadline:
            if not self.socket.poll(100):
                continue
            header, content = self._read(expected)
            if header is None or header.get("event") not in TERMINAL:
                continue
            request_id = header.get("id")
            if request_id in expected:
                answered[request_id] += 1
                self._note(expected[request_id], header, content)
                if answered[request_id] == 2:
                    self.counts.duplicates += 1
                    self.counts.record("answered twice", expected[request_id])
            else:
                other += 1
                self._note(None, header, content)
        for request_id in set(expected) - set(answered):
            self.counts.hangs += 1
            self.counts.record("no answer", expected[request_id])

    def _read(self, expected: dict[str, Plan]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        frames = self.socket.recv_multipart()
        try:
            raw = split_frames(frames)
            header, content = raw.header(), raw.content()
            plan = expected.get(header.get("id"))
            if plan is not None and plan.kind == "request":  # authentic: signed with its sender's key
                self.signers[plan.as_admin].verify(raw.signature, raw.signed_frames)
        except (FrameError, SignatureError) as exc:
            self.counts.bad_replies += 1
            self.counts.record(f"bad reply ({exc})", None)
            return None, {}
        return header, content

    def _note(self, plan: Plan | None, header: dict[str, Any], content: dict[str, Any]) -> None:
        code = content.get("code", "OK") if header["event"] == "error" else "OK"
        self.counts.codes[code] += 1
        if plan is not None and plan.kind == "request":
            name = plan.op
            if plan.op == "view":
                view = plan.params.get("view")
                name = f"view {view if isinstance(view, str) and view in VIEWS else '(other)'}"
            self.counts.by_operation[(name, code)] += 1
        if code == "INTERNAL":
            self.counts.internal += 1
            self.counts.record(f"INTERNAL {content.get('message', '')[:200]!r}", plan)
        result_id = content.get("result_id")
        if isinstance(result_id, str):
            self.results.append(result_id)
            if "attribution_methods" in content or "analysis" in content:  # an analysis, alone or after generating
                self.analyses.append(result_id)

    # ------------------------------------------------------------------------------------------- health

    def ping(self, timeout_s: float = 10.0) -> bool:
        """True when the daemon answers a signed ping with a signed pong."""
        answer = self.call("ping", {}, timeout_s)
        return answer is not None and answer[0] == "result" and answer[1].get("pong") is True

    def call(self, op: str, params: dict[str, Any], timeout_s: float = 60.0) -> tuple[str, dict[str, Any]] | None:
        """One signed request of the user's, answered (its final event and content) or None by the deadline."""
        request_id = uuid.uuid4().hex
        self.socket.send_multipart(encode_message(new_request_header(op, self.user.user, request_id),
                                                  {"params": params}, self.signers[False]))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.socket.poll(100):
                continue
            raw = split_frames(self.socket.recv_multipart())
            header = raw.header()
            if header.get("id") == request_id and header.get("event") in TERMINAL:
                self.signers[False].verify(raw.signature, raw.signed_frames)
                content = raw.content()
                self._note(None, header, content)
                return header["event"], content
        return None


def harmless(params: dict[str, Any], models: list[str]) -> dict[str, Any]:
    """The admin never shuts the daemon down (shutdown always gets a parameter it refuses) nor unloads a model
    the fuzzer uses."""
    params = {k: ("fuzz-" + v if k == "model" and isinstance(v, str) and v in models else v)
              for k, v in params.items()}
    return params or {"fuzz": True}
