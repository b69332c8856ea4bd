"""What each fuzzed message is, as a plan the target encodes and signs only when it sends it.

Why plans and not frames: a signed message carries a timestamp and a nonce, so frames drawn ahead of
time would be stale or replays by the time they are sent (and again when hypothesis shrinks a failure).
Kinds, from most to least structured:
- ``request``: a signed request of a registered operation, its parameters plausible or hostile;
- ``header``: a signed request with hostile header fields (version, id, op, user, timestamp);
- ``content``: a signed request whose content is not the map it should be, or carries stray buffers;
- ``mutated``: a request's encoded frames with bytes flipped, cut or inserted, or frames dropped or
  repeated, then signed again (the daemon decodes the damage) or not (it must refuse it unread);
- ``junk``: random frames, with or without the protocol's magic.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass, field
from typing import Any

from ecco_protocol.signing import Signer
from ecco_protocol.version import MAGIC
from hypothesis import strategies as st

from tests.fuzz.fields import CORE, FIELDS, WEIGHTS, view_params
from tests.fuzz.values import either, header_values, hostile, repeated

SHORT = reprlib.Repr()  # reports quote values cut short
SHORT.maxstring = SHORT.maxother = 60
DROP = "<drop>"  # a header change that removes the field
HEADER_FIELDS = ["v", "id", "op", "user", "ts", "nonce", "extra"]
ADMIN_OPERATIONS = ("models.load", "models.unload", "shutdown")


@dataclass(frozen=True)
class Mutation:
    frame: int  # which frame (modulo the frame count)
    action: str  # flip, cut, insert, drop, repeat
    at: float  # where in the frame, 0..1
    byte: int
    resign: bool  # sign the damaged frames (the damage reaches the decoder) or keep the old signature

    def apply(self, frames: list[Any], signer: Signer) -> list[bytes]:
        """The frames damaged as planned (and signed again when ``resign``)."""
        damaged = [bytes(f) for f in frames]
        index = self.frame % len(damaged)
        data = damaged[index]
        at = int(self.at * len(data))
        if self.action == "flip" and data:
            at = min(at, len(data) - 1)
            damaged[index] = data[:at] + bytes([data[at] ^ (self.byte or 1)]) + data[at + 1:]
        elif self.action == "cut":
            damaged[index] = data[:at]
        elif self.action == "insert":
            damaged[index] = data[:at] + bytes([self.byte]) + data[at:]
        elif self.action == "drop":
            del damaged[index]
        else:  # repeat
            damaged.insert(index, data)
        if self.resign and len(damaged) >= 4 and damaged[0] == MAGIC:
            damaged[1] = signer.sign(damaged[2:])
        return damaged


@dataclass(frozen=True)
class Plan:
    kind: str
    op: str = "ping"
    params: Any = field(default_factory=dict)
    as_admin: bool = False
    header_changes: tuple[tuple[str, Any], ...] = ()
    content: Any = None  # replaces {"params": ...} when set (kind "content")
    buffers: tuple[bytes, ...] = ()  # extra signed frames after the content
    mutation: Mutation | None = None
    frames: tuple[bytes, ...] = ()  # kind "junk"

    def describe(self) -> str:
        """One line for a report: enough to send the message again by hand."""
        text = f"{self.kind} {self.op}{' (admin)' if self.as_admin else ''} params={SHORT.repr(self.params)}"
        for name, value in (("header", self.header_changes), ("content", self.content),
                            ("buffers", self.buffers), ("mutation", self.mutation), ("frames", self.frames)):
            if value:
                text += f" {name}={SHORT.repr(value)}"
        return text


@st.composite
def request_params(draw: st.DrawFn, op: str) -> dict[str, Any]:
    """The operation's core parameters, some optional ones, and now and then an unknown one."""
    fields = FIELDS[op]
    names = list(CORE.get(op, []))
    names += draw(st.lists(st.sampled_from(sorted(fields)), max_size=6, unique=True)) if fields else []
    params = {name: draw(either(fields[name])) for name in dict.fromkeys(names)}
    if op == "view" and isinstance(params.get("view"), str) and draw(st.integers(0, 9)) < 8:
        params["params"] = draw(view_params(params["view"]))
    if draw(st.integers(0, 19)) == 19:  # hypothesis favours small numbers: the rare case is the large one
        params[draw(st.text(max_size=8))] = draw(hostile())
    return params


def requests() -> st.SearchStrategy[Plan]:
    weighted = [op for op in sorted(FIELDS) for _ in range(WEIGHTS.get(op, 1))]
    user = st.sampled_from(weighted).flatmap(lambda op: st.builds(Plan, st.just("request"), st.just(op),
                                                                  request_params(op)))
    # The admin only ever sends what cannot stop the daemon or unload its model (see target.harmless).
    admin = st.sampled_from(ADMIN_OPERATIONS).flatmap(
        lambda op: st.builds(Plan, st.just("request"), st.just(op), request_params(op), st.just(True)))
    return st.integers(0, 9).flatmap(lambda roll: admin if roll == 9 else user)


def headers() -> st.SearchStrategy[Plan]:
    change = st.tuples(st.sampled_from(HEADER_FIELDS), st.one_of(st.just(DROP), header_values()))
    return st.builds(Plan, st.just("header"), st.sampled_from(["ping", "analyze", "status"]),
                     header_changes=st.lists(change, min_size=1, max_size=3).map(tuple))


def contents() -> st.SearchStrategy[Plan]:
    content = st.one_of(hostile(), st.builds(lambda params: {"params": params}, hostile()),
                        st.builds(lambda extra: {"params": {}, "extra": extra}, hostile()))
    return st.builds(Plan, st.just("content"), st.sampled_from(sorted(FIELDS)), content=content,
                     buffers=st.lists(st.binary(max_size=40), max_size=3).map(tuple))


def mutations() -> st.SearchStrategy[Plan]:
    mutation = st.builds(Mutation, st.integers(0, 5), st.sampled_from(["flip", "cut", "insert", "drop", "repeat"]),
                         st.floats(0, 1), st.integers(0, 255), st.booleans())
    return st.sampled_from(sorted(FIELDS)).flatmap(
        lambda op: st.builds(Plan, st.just("mutated"), st.just(op), request_params(op), mutation=mutation))


def junk() -> st.SearchStrategy[Plan]:
    frame = st.one_of(st.binary(max_size=64), st.just(b"ecco1"), repeated(b"\0", 70_000))
    return st.builds(Plan, st.just("junk"), frames=st.lists(frame, min_size=1, max_size=6).map(tuple))


def plans() -> st.SearchStrategy[Plan]:
    return st.one_of(requests(), requests(), requests(), headers(), contents(), mutations(), junk())


def batches(min_size: int = 1, max_size: int = 20) -> st.SearchStrategy[list[Plan]]:
    return st.lists(plans(), min_size=min_size, max_size=max_size)
