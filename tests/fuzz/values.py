"""Values for fuzzed requests: hostile ones of every type msgpack carries, and plausible ones that reach
deep into an operation (a real result id, a loaded model, token ids near the vocabulary's edge).

Why references: a real result id or request id exists only once the daemon runs, while strategies are
built before. A ``Ref`` names which kind of live value to use; the target resolves it when it sends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgpack
import numpy as np
from ecco_protocol.codec import ARRAY_KEY, WIRE_DTYPES
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# Integers where parsers break: signs, 32 and 64-bit edges, msgpack's largest unsigned.
INT_EDGES = [0, 1, -1, 2, 255, 256, 383, 384, 2**31, -(2**31), 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 10**9]
FLOAT_EDGES = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-300, 1e300, 0.5]
STRING_EDGES = ["", " ", "\x00", "\u00b2", "2.0", "\n", "../../etc/passwd", "%s%n", "\ud7ff"]
VOCABULARY = 384  # the tiny models' token count (tests/tiny_models.py)


@dataclass(frozen=True)
class Ref:
    """A live value, chosen when the message is sent: ``kind`` is "result" (any stored result), "analysis"
    (a stored analysis run), "request" or "model"."""

    kind: str
    pick: int = 0


def repeated(unit: str | bytes, count: int) -> st.SearchStrategy[object]:
    """A long value, built when drawn (a literal would fill every report that prints the strategy)."""
    return st.builds(lambda: unit * count)


def refs(kind: str) -> st.SearchStrategy[Ref]:
    return st.builds(Ref, st.just(kind), st.integers(0, 1000))


def arrays() -> st.SearchStrategy[np.ndarray]:
    """numpy arrays, sent as binary buffers with a reference in the content."""
    return hnp.arrays(st.sampled_from(sorted(WIRE_DTYPES)), hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))


def scalars() -> st.SearchStrategy[object]:
    return st.one_of(
        st.none(), st.booleans(), st.sampled_from(INT_EDGES), st.integers(-(2**63), 2**64 - 1),
        st.sampled_from(FLOAT_EDGES), st.floats(), st.sampled_from(STRING_EDGES), repeated("x", 5000),
        st.text(max_size=12), st.binary(max_size=12),
        st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8)),
    )


def header_values() -> st.SearchStrategy[object]:
    """What a header field may be replaced by: anything msgpack carries except arrays (headers carry none)."""
    return st.recursive(scalars(), lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=4), inner, max_size=2), max_leaves=4)


def hostile() -> st.SearchStrategy[object]:
    """Any value of any type, nested: what a field must survive being given."""
    leaves = st.one_of(scalars(), arrays(), array_refs())
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.one_of(st.text(max_size=6), st.binary(max_size=4)), inner, max_size=3),
                        max_leaves=8)


def array_refs() -> st.SearchStrategy[dict[str, object]]:
    """Array references that point nowhere, or at buffers of the wrong size or dtype."""
    ref = st.lists(st.one_of(st.sampled_from(sorted(WIRE_DTYPES) + ["object", "<f8", ""]), scalars(),
                             st.lists(st.sampled_from(INT_EDGES), max_size=3)), max_size=4)
    return st.builds(lambda value: {ARRAY_KEY: value}, st.one_of(ref, scalars()))


def small_ints(low: int = -3, high: int = 12) -> st.SearchStrategy[int]:
    return st.integers(low, high)


def token_ids() -> st.SearchStrategy[list[int]]:
    """Ids mostly in the vocabulary, some just past either end of it."""
    return st.lists(st.integers(-2, VOCABULARY + 2), max_size=12)


def texts() -> st.SearchStrategy[str]:
    words = st.sampled_from(["The", " capital", " of", " France", " is", " Paris", ".", " the", " cat", " ", "\n"])
    # The long one (over 64 KiB) is admitted off the socket loop.
    return st.one_of(st.lists(words, min_size=2, max_size=20).map("".join), st.text(max_size=30), st.just(""),
                     repeated("x", 70_000))


def either(plausible: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Mostly a plausible value (reaching deep code), sometimes a hostile one (shrinks to plausible)."""
    return st.integers(0, 9).flatmap(lambda roll: plausible if roll < 8 else hostile())
