"""Two layers of stored results compared with CCA, SVCCA, PWCCA or CKA, over one text or a corpus.

Why the client computes: the math lives once, in ``ecco_client.similarity`` (checked against Ecco's
numbers, usable on plain arrays with no daemon). The daemon only ships each result's stored states
(the ``states`` view), so a corpus is the stacked tokens of several stored results, and CCA gets the
many tokens it needs (more than the neurons compared) without a daemon-side corpus operation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ecco_client import similarity

METHODS: dict[str, Callable[..., float]] = {
    "cca": similarity.cca,
    "svcca": similarity.svcca,
    "pwcca": similarity.pwcca,
    "cka": similarity.cka,
}
SOURCES = ("hidden", "activations")


def check(method: str, source: str, dims: int | None) -> None:
    """Refuses a bad choice before anything is asked of the daemon."""
    if method not in METHODS:
        raise ValueError(f"method is one of {', '.join(METHODS)}, not {method!r}")
    if source not in SOURCES:
        raise ValueError(f"source is one of {', '.join(SOURCES)}, not {source!r}")
    if dims is not None and method == "cka":
        raise ValueError("cka compares all neurons and takes no dims; dims is for cca, pwcca (neurons) and svcca")


def states_params(result_id: str, source: str, layer_a: int, layer_b: int) -> dict[str, Any]:
    """The ``view`` request for the two layers' stored states of one result."""
    return {"result_id": result_id, "view": "states", "params": {"what": source, "layers": [layer_a, layer_b]}}


def layer_pair(reply: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A ``states`` reply (2, tokens, neurons) as two (neurons, tokens) arrays, Ecco's layout."""
    values = np.asarray(reply["values"])  # (2, R, H)
    return values[0].T, values[1].T


def compare(method: str, pairs: Sequence[tuple[np.ndarray, np.ndarray]], dims: int | None = None) -> float:
    """``method`` over the tokens of every pair stacked (one pair: one text)."""
    acts_a = similarity.stack_tokens([a for a, _ in pairs])
    acts_b = similarity.stack_tokens([b for _, b in pairs])
    if dims is None:
        return METHODS[method](acts_a, acts_b)
    return METHODS[method](acts_a, acts_b, dims)
