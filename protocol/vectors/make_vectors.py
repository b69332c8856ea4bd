"""Writes the golden vectors once; they are committed, and tests never regenerate them.

Run only when the protocol changes on purpose: `python protocol/vectors/make_vectors.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ecco_protocol.codec import encode_message
from ecco_protocol.signing import Signer

KEY = "0123456789abcdef" * 4
HERE = Path(__file__).parent


def describe(value):
    if isinstance(value, np.ndarray):
        return {"__array__": {"dtype": value.dtype.name, "shape": list(value.shape), "data": value.ravel().tolist()}}
    if isinstance(value, dict):
        return {k: describe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [describe(v) for v in value]
    return value


VECTORS = {
    "request_ping": (
        {"v": "2.0", "id": "req-1", "op": "ping", "user": "admin", "ts": 1767225600.25, "nonce": "00112233aabbccdd"},
        {"params": {}}, True),
    "request_generate": (
        {"v": "2.0", "id": "req-2", "op": "generate", "user": "alice", "ts": 1767225601.5, "nonce": "deadbeef00000001"},
        {"params": {"prompt": "The capital of France is", "generate": 5, "do_sample": False, "alternatives": 3,
                    "array_dtype": "float16"}}, True),
    "event_token": (
        {"v": "2.0", "id": "req-2", "event": "token", "seq": 2, "ts": 1767225602.0},
        {"position": 6, "token_id": 7042, "token": " Paris", "prob": 0.5,
         "alternatives": [{"token": " Paris", "id": 7042, "prob": 0.5}, {"token": " the", "id": 260, "prob": 0.25}]},
        True),
    "event_result_arrays": (
        {"v": "2.0", "id": "req-2", "event": "result", "seq": 9, "ts": 1767225603.0},
        {"model": "smollm2-135m", "token_ids": np.array([1, 504, 3575, 282, 4649, 314, 7042], dtype=np.int64),
         "probabilities": np.array([0.5, 0.25], dtype=np.float16),
         "alternatives": {"ids": np.array([[7042, 260], [30, 11]], dtype=np.int64),
                          "probs": np.array([[0.5, 0.25], [0.75, 0.125]], dtype=np.float32)},
         "mask": np.array([True, False, True], dtype=np.bool_), "stop_reason": "length", "result_id": "r-1"},
        True),
    "event_error_unsigned": (
        {"v": "2.0", "id": None, "event": "error", "seq": 0, "ts": 1767225604.0},
        {"code": "BAD_FRAME", "message": "expected at least 4 frames (magic, signature, header, content), got 1"},
        False),
}


def main() -> None:
    for name, (header, content, signed) in VECTORS.items():
        frames = encode_message(header, content, Signer(KEY) if signed else None)
        payload = {
            "description": name.replace("_", " "),
            "key": KEY if signed else None,
            "frames_hex": [bytes(f).hex() for f in frames],
            "header": header,
            "content": describe(content),
        }
        (HERE / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
