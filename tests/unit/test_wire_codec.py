"""Codec properties on raw bytes: arrays round-trip in every wire dtype, garbage is a FrameError."""

from __future__ import annotations

import numpy as np
import pytest
from ecco_protocol.codec import WIRE_DTYPES, FrameError, decode_message, encode_message, new_request_header
from ecco_protocol.signing import ReplayGuard, SignatureError, Signer
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

SIGNER = Signer("k" * 64)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(dtype=st.sampled_from(sorted(WIRE_DTYPES)).map(np.dtype),
                  shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)))
def test_arrays_round_trip_exactly(array):
    frames = encode_message(new_request_header("x", "u"), {"a": array, "nested": {"b": [array]}}, SIGNER)
    message = decode_message([bytes(f) for f in frames], SIGNER)
    for got in (message.content["a"], message.content["nested"]["b"][0]):
        assert got.dtype == array.dtype and got.shape == array.shape
        np.testing.assert_array_equal(got, array)


def test_big_endian_and_non_contiguous_arrays_arrive_as_little_endian_values():
    array = np.arange(12, dtype=">f4").reshape(3, 4)[:, ::2]
    message = decode_message([bytes(f) for f in encode_message({"v": "1.0"}, {"a": array}, None)], None)
    np.testing.assert_array_equal(message.content["a"], array)


def test_unsupported_dtypes_are_refused_at_encoding():
    with pytest.raises(TypeError):
        encode_message({}, {"a": np.array(["text"])}, None)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=0, max_size=6))
def test_garbage_frames_raise_frame_error_or_signature_error_only(frames):
    try:
        decode_message(frames, SIGNER)
    except (FrameError, SignatureError):
        pass


def test_bad_array_reference_is_a_frame_error():
    frames = [bytes(f) for f in encode_message({}, {"a": np.zeros(4, np.float32)}, None)]
    with pytest.raises(FrameError):
        decode_message(frames[:-1], None)


def test_replay_guard_refuses_repeats_and_stale_timestamps():
    guard = ReplayGuard(window_seconds=10)
    guard.check(b"sig-1", timestamp=1000.0, now=1000.0)
    with pytest.raises(SignatureError, match="replayed"):
        guard.check(b"sig-1", timestamp=1000.0, now=1001.0)
    with pytest.raises(SignatureError, match="timestamp"):
        guard.check(b"sig-2", timestamp=900.0, now=1000.0)
    guard.check(b"sig-3", timestamp=1000.0, now=1005.0)


@pytest.mark.parametrize("timestamp", [float("nan"), float("inf"), float("-inf")])
def test_replay_guard_refuses_non_finite_timestamps(timestamp):
    """A NaN passes every comparison with the window and its replay record would be dropped at once."""
    guard = ReplayGuard(window_seconds=300)
    with pytest.raises(SignatureError, match="finite"):
        guard.check(b"sig-nan", timestamp=timestamp, now=1000.0)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=2, max_size=30), st.binary(max_size=30), st.data())
def test_frame_boundaries_are_part_of_the_signature(first, second, data):
    """The same bytes cut into frames differently never verify: [AB, CD] is not [A, BCD]."""
    joined = first + second
    cut = data.draw(st.integers(min_value=0, max_value=len(joined)).filter(lambda c: c != len(first)))
    signature = SIGNER.sign([first, second])
    with pytest.raises(SignatureError):
        SIGNER.verify(signature, [joined[:cut], joined[cut:]])
    SIGNER.verify(signature, [first, second])
