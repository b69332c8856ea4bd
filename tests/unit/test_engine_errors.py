"""The engine's one error path: once a sender is authenticated, every reply to them is signed.

A control handler or a request's ``prepare`` that raises an unexpected exception must answer the caller
at once with a signed INTERNAL error (clients drop unsigned replies, so an unsigned one would leave the
caller waiting until its own timeout).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ecco_protocol.codec import encode_message, new_request_header, split_frames
from ecco_protocol.signing import SignatureError, Signer

from ecco_daemon.config import DaemonConfig
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.runtime.scheduler import Scheduler
from ecco_daemon.server.engine import ProtocolEngine
from ecco_daemon.server.registry import OperationRegistry
from ecco_daemon.server.users import UserStore


class RecordingOutbox:
    def __init__(self) -> None:
        self.sent: list[list[Any]] = []

    def send(self, identity: bytes, frames: list[Any], final: bool = False) -> None:
        self.sent.append(list(frames))


@dataclass
class BrokenPrepare:
    def prepare(self, ctx: RuntimeContext, job: Any) -> None:
        raise KeyError("a bug in prepare")


def _engine(tmp_path: Path) -> tuple[ProtocolEngine, RecordingOutbox, Signer, str]:
    registry = OperationRegistry()

    @registry.control("explode")
    def explode(ctx: RuntimeContext, job: Any, params: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("a bug in a control handler")

    @registry.job("broken", parse=lambda params: BrokenPrepare())
    def broken(ctx: RuntimeContext, job: Any, request: Any) -> dict[str, Any]:
        raise AssertionError("never runs: prepare fails first")

    users = UserStore(tmp_path / "users.json")
    admin = users.ensure_admin()
    ctx = RuntimeContext(config=DaemonConfig(state_dir=tmp_path), models=None, store=None,  # type: ignore[arg-type]
                         scheduler=Scheduler(), users=users)
    outbox = RecordingOutbox()
    return ProtocolEngine(ctx, registry, outbox), outbox, Signer(admin.key), admin.name  # type: ignore[arg-type]


@pytest.mark.parametrize("op", ["explode", "broken"])
def test_an_unexpected_failure_answers_a_signed_internal_error(tmp_path: Path, op: str):
    engine, outbox, signer, user = _engine(tmp_path)
    header = new_request_header(op, user)
    engine.handle(b"peer", encode_message(header, {"params": {}}, signer))
    assert len(outbox.sent) == 1  # answered at once, exactly once
    raw = split_frames(outbox.sent[0])
    signer.verify(raw.signature, raw.signed_frames)  # raises if unsigned or signed with another key
    assert raw.header()["id"] == header["id"] and raw.header()["event"] == "error"
    content = raw.content()
    assert content["code"] == "INTERNAL" and "a bug in" in content["message"]
    assert len(engine.ctx.inflight) == 0


def test_an_unauthenticated_sender_gets_an_unsigned_refusal(tmp_path: Path):
    engine, outbox, _, user = _engine(tmp_path)
    engine.handle(b"peer", encode_message(new_request_header("explode", user), {"params": {}}, Signer(b"wrong")))
    raw = split_frames(outbox.sent[0])
    assert raw.content()["code"] == "UNAUTHORIZED"
    with pytest.raises(SignatureError):
        Signer(b"wrong").verify(raw.signature, raw.signed_frames)
