"""Framing and msgpack encoding (PROTOCOL.md, "Frames").

A message is ``[MAGIC, signature, header, content, *buffers]``. numpy arrays anywhere in the
content travel as raw buffers after the content frame, referenced by ``{"__nd__": [dtype, shape,
index]}``, so large results are never re-encoded as lists (pyzmq's serialsocket example).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from ecco_protocol.errors import ErrorCode
from ecco_protocol.signing import Buffer, Signer
from ecco_protocol.version import MAGIC, PROTOCOL_VERSION

ARRAY_KEY = "__nd__"
# dtypes that may cross the wire; always little-endian.
WIRE_DTYPES = frozenset(
    {"bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
     "float16", "float32", "float64"}
)


# A header holds a few short fields (§3.1, §3.2); anything larger is refused before it is decoded.
MAX_HEADER_BYTES = 4096


class FrameError(Exception):
    """The frames cannot be read as a message of this protocol."""

    code = ErrorCode.BAD_FRAME


@dataclass
class Message:
    header: dict[str, Any]
    content: dict[str, Any] = field(default_factory=dict)

    @property
    def request_id(self) -> str | None:
        value = self.header.get("id")
        return value if isinstance(value, str) else None


@dataclass
class RawMessage:
    """A message split into frames but not yet trusted: verify before parsing the content."""

    signature: Buffer
    header_bytes: Buffer
    content_bytes: Buffer
    buffers: list[Buffer]

    @property
    def signed_frames(self) -> list[Buffer]:
        return [self.header_bytes, self.content_bytes, *self.buffers]

    def header(self) -> dict[str, Any]:
        size = memoryview(self.header_bytes).nbytes
        if size > MAX_HEADER_BYTES:
            # Refused before decoding: an unauthenticated sender must not make us allocate for it.
            raise FrameError(f"header frame is {size} bytes; the limit is {MAX_HEADER_BYTES}")
        header = _unpack(self.header_bytes, "header")
        if not isinstance(header, dict):
            raise FrameError("header frame is not a map")
        return header

    def content(self) -> dict[str, Any]:
        buffers = self.buffers

        def hook(obj: dict[str, Any]) -> Any:
            if len(obj) == 1 and ARRAY_KEY in obj:
                return _array_from_ref(obj[ARRAY_KEY], buffers)
            return obj

        content = _unpack(self.content_bytes, "content", object_hook=hook)
        if not isinstance(content, dict):
            raise FrameError("content frame is not a map")
        return content


def split_frames(frames: Sequence[Buffer]) -> RawMessage:
    if len(frames) < 4:
        raise FrameError(f"expected at least 4 frames (magic, signature, header, content), got {len(frames)}")
    if bytes(frames[0]) != MAGIC:
        raise FrameError(f"first frame must be {MAGIC!r}")
    return RawMessage(frames[1], frames[2], frames[3], list(frames[4:]))


def encode_message(header: dict[str, Any], content: dict[str, Any], signer: Signer | None) -> list[Buffer]:
    buffers: list[Buffer] = []
    header_bytes = msgpack.packb(header, use_bin_type=True, default=_scalar_default)
    content_bytes = msgpack.packb(content, use_bin_type=True, default=_array_default(buffers))
    signed = [header_bytes, content_bytes, *buffers]
    signature = signer.sign(signed) if signer is not None else b""
    return [MAGIC, signature, *signed]


def decode_message(frames: Sequence[Buffer], signer: Signer | None) -> Message:
    """Split, verify (when a signer is given) and parse; for callers that know the key up front."""
    raw = split_frames(frames)
    if signer is not None:
        signer.verify(raw.signature, raw.signed_frames)
    return Message(raw.header(), raw.content())


def new_request_header(op: str, user: str, request_id: str | None = None) -> dict[str, Any]:
    return {
        "v": PROTOCOL_VERSION,
        "id": request_id or uuid.uuid4().hex,
        "op": op,
        "user": user,
        "ts": time.time(),
        "nonce": os.urandom(8).hex(),
    }


def new_event_header(request_id: str | None, event: str, seq: int) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "id": request_id, "event": event, "seq": seq, "ts": time.time()}


def _unpack(data: Buffer, what: str, object_hook: Callable[[dict[str, Any]], Any] | None = None) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, object_hook=object_hook, strict_map_key=True)
    except FrameError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types for garbage input
        raise FrameError(f"{what} frame is not valid msgpack: {exc}") from None


def _scalar_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _array_default(buffers: list[Buffer]) -> Callable[[Any], Any]:
    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            array = obj if obj.flags.c_contiguous else obj.copy(order="C")
            if array.dtype.name not in WIRE_DTYPES:
                raise TypeError(f"arrays of dtype {array.dtype} cannot cross the wire")
            if array.dtype.byteorder == ">":
                array = array.astype(array.dtype.newbyteorder("<"))
            buffers.append(memoryview(array).cast("B") if array.size else b"")
            return {ARRAY_KEY: [array.dtype.name, list(array.shape), len(buffers) - 1]}
        return _scalar_default(obj)

    return default


def _array_from_ref(ref: Any, buffers: list[Buffer]) -> np.ndarray:
    try:
        dtype_name, shape, index = ref
        if dtype_name not in WIRE_DTYPES:
            raise ValueError(f"dtype {dtype_name!r} not allowed")
        dtype = np.dtype(dtype_name).newbyteorder("<")
        shape = tuple(int(s) for s in shape)
        buffer = buffers[int(index)]
        array = np.frombuffer(buffer, dtype=dtype)
        return array.reshape(shape)
    except Exception as exc:
        raise FrameError(f"bad array reference {ref!r}: {exc}") from None
