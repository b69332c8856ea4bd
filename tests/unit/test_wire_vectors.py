"""Golden vectors: both the client's decoder and the daemon's engine read them, and re-encode byte for byte."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from ecco_protocol.codec import encode_message, split_frames
from ecco_protocol.signing import Signer
from ecco_protocol.version import PROTOCOL_VERSION

ROOT = Path(__file__).resolve().parents[2]
VECTORS = sorted((ROOT / "protocol" / "vectors").glob("*.json"))


def expected_value(value):
    if isinstance(value, dict) and set(value) == {"__array__"}:
        spec = value["__array__"]
        return np.array(spec["data"], dtype=spec["dtype"]).reshape(spec["shape"])
    if isinstance(value, dict):
        return {k: expected_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expected_value(v) for v in value]
    return value


def assert_same(actual, expected):
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray) and actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)
    elif isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, list):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    else:
        assert actual == expected and type(actual) is type(expected)


def load(path: Path):
    vector = json.loads(path.read_text())
    frames = [bytes.fromhex(f) for f in vector["frames_hex"]]
    return vector, frames


def test_there_are_vectors_for_requests_events_arrays_and_unsigned_errors():
    names = {p.stem for p in VECTORS}
    assert {"request_ping", "request_generate", "event_token", "event_result_arrays", "event_error_unsigned"} <= names


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_vector_decodes_verifies_and_reencodes_byte_for_byte(path):
    vector, frames = load(path)
    raw = split_frames(frames)
    signer = Signer(vector["key"]) if vector["key"] else None
    if signer is not None:
        signer.verify(raw.signature, raw.signed_frames)
    else:
        assert raw.signature == b""
    header, content = raw.header(), raw.content()
    assert_same(header, vector["header"])
    assert_same(content, expected_value(vector["content"]))
    again = encode_message(header, content, signer)
    assert [bytes(f) for f in again] == frames


@pytest.mark.parametrize("path", [p for p in VECTORS if p.stem.startswith("request_")], ids=lambda p: p.stem)
def test_a_tampered_vector_fails_verification(path):
    from ecco_protocol.signing import SignatureError

    vector, frames = load(path)
    frames[3] = frames[3][:-1] + bytes([frames[3][-1] ^ 1])
    raw = split_frames(frames)
    with pytest.raises(SignatureError):
        Signer(vector["key"]).verify(raw.signature, raw.signed_frames)


def test_spec_states_the_version_the_code_speaks():
    spec = (ROOT / "protocol" / "PROTOCOL.md").read_text()
    stated = re.search(r"Protocol version: \*\*([0-9.]+)\*\*", spec)
    assert stated and stated.group(1) == PROTOCOL_VERSION
    assert f'`"{PROTOCOL_VERSION}"`' in spec
