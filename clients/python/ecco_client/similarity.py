"""CCA, SVCCA, PWCCA and linear CKA on plain numpy arrays, with no daemon and no torch.

Why: Ecco users call ``ecco.analysis.cca(acts1, acts2)`` and friends on activation arrays they already
hold. These functions take the same input, arrays shaped (neurons, tokens), and give Ecco's numbers
(Ecco 0.1.2, which wraps Google's svcca code), checked against values computed once with Ecco's own code
(``tests/fixtures/similarity_ecco.npz``). Where Ecco would return a number that carries no meaning, they
raise a ``ValueError`` that says what is needed instead.

What Ecco computes, and so what these compute:

- ``cca``: the canonical correlations of the two sets of neurons (covariances rescaled by their largest
  entry, neurons whose rescaled variance is below ``epsilon`` dropped, ``epsilon`` added to the diagonal),
  averaged over the leading correlations that hold 98% of their sum.
- ``svcca``: each array centered and cut to its top ``dims`` singular directions (``dims`` is a fixed
  count, 20 by default, not a variance fraction), then the plain mean of all the canonical correlations
  (no 98% cut here).
- ``pwcca``: the canonical correlations weighted by how much of the first array's (uncentered)
  activations each direction accounts for. As in Ecco, the directions are the canonical rotation applied
  to the centered activations without whitening, with the neuron means added back; so when the means are
  not zero the value depends slightly on the signs LAPACK gives the singular vectors, as Ecco's does.
- ``cka``: linear centered kernel alignment in feature space (the biased estimator).

Canonical correlation needs more tokens than neurons: with ``n1`` and ``n2`` neurons and ``tokens``
tokens, the two sets of centered activations share at least ``n1 + n2 - (tokens - 1)`` directions, each
a canonical correlation of exactly 1 whatever the data. So CCA, SVCCA and PWCCA ask for
``tokens > n1 + n2`` (neurons kept, or SVD components for SVCCA). Ecco only asks for
``tokens > n1`` and then returns numbers near 1 for unrelated activations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["EPSILON", "MASS_THRESHOLD", "SVCCA_DIMS", "cca", "cka", "pwcca", "stack_tokens", "svcca"]

EPSILON = 1e-10  # Ecco's: the variance cut-off and the ridge on the (rescaled) covariances
MASS_THRESHOLD = 0.98  # Ecco's cca averages the leading correlations that hold this share of their sum
SVCCA_DIMS = 20  # Ecco's default number of SVD components for svcca


def stack_tokens(activations: Sequence[ArrayLike]) -> np.ndarray:
    """Join activations from several texts along the token axis (the last one).

    Why: CCA needs more tokens than one short text has; Ecco's own usage compares layers over a corpus.
    Each item is shaped (..., neurons, tokens), e.g. one layer's (neurons, tokens) or all layers'
    (layers, neurons, tokens); all leading dimensions must agree.
    """
    arrays = [np.asarray(a) for a in activations]
    if not arrays:
        raise ValueError("stack_tokens needs at least one array")
    first = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.ndim < 2:
            raise ValueError(f"item {i} has shape {a.shape}; each must be shaped (..., neurons, tokens)")
        if a.shape[:-1] != first[:-1]:
            raise ValueError(
                f"item {i} has shape {a.shape}, item 0 has {first}: all but the token axis (the last) must agree"
            )
    return np.concatenate(arrays, axis=-1)


def cca(acts1: ArrayLike, acts2: ArrayLike, dims: int | None = None, *, epsilon: float = EPSILON) -> float:
    """Mean canonical correlation of two (neurons, tokens) arrays, as ``ecco.analysis.cca``.

    ``dims`` keeps the first ``dims`` neurons of each, like ``acts[:dims]`` (Ecco's examples use 50).
    Needs more tokens than the neurons kept in both arrays together.
    """
    x, y = _pair(acts1, acts2, dims, "cca")
    _need_tokens(x.shape[0], y.shape[0], x.shape[1], "cca", "neurons")
    rho = _canonical(x, y, epsilon).rho
    return float(np.mean(rho[: _mass_cutoff(rho, MASS_THRESHOLD)]))


def svcca(acts1: ArrayLike, acts2: ArrayLike, dims: int = SVCCA_DIMS, *, epsilon: float = EPSILON) -> float:
    """Mean canonical correlation of the top ``dims`` singular directions of each array, as ``ecco.analysis.svcca``.

    ``dims`` is the number of SVD components kept from each (Ecco's default is 20). Needs
    ``tokens > 2 * dims``; otherwise every correlation would be 1 by construction.
    """
    x, y = _pair(acts1, acts2, None, "svcca")
    dims = _check_dims(dims, "svcca")
    tokens = x.shape[1]
    _need_tokens(dims, dims, tokens, "svcca", "SVD components (dims)")  # first: it says how many tokens
    for name, acts in (("acts1", x), ("acts2", y)):
        if dims > min(acts.shape):
            raise ValueError(
                f"svcca: dims={dims} SVD components, but {name} is {acts.shape[0]} neurons x {acts.shape[1]} tokens "
                f"and has at most {min(acts.shape)}; pass a smaller dims"
            )
    reduced = [_top_singular(acts, dims) for acts in (x, y)]
    return float(np.mean(_canonical(reduced[0], reduced[1], epsilon).rho))


def pwcca(acts1: ArrayLike, acts2: ArrayLike, dims: int | None = None, *, epsilon: float = EPSILON) -> float:
    """Projection-weighted canonical correlation, as ``ecco.analysis.pwcca``.

    Each canonical correlation counts in proportion to how much of ``acts1``'s activations its direction
    accounts for, so directions that matter to the representation weigh more than the trailing noisy ones.
    ``dims`` keeps the first ``dims`` neurons of each. When ``acts2`` keeps fewer neurons than ``acts1``,
    the weights come from ``acts2`` (Ecco fails on that case; this is what its code intends).
    """
    x, y = _pair(acts1, acts2, dims, "pwcca")
    _need_tokens(x.shape[0], y.shape[0], x.shape[1], "pwcca", "neurons")
    result = _canonical(x, y, epsilon)
    if result.x_kept.sum() <= result.y_kept.sum():
        acts, rotation = x[result.x_kept], result.u.T
    else:
        acts, rotation = y[result.y_kept], result.vt
    means = acts.mean(axis=1, keepdims=True)
    directions = rotation @ (acts - means) + means  # Ecco's directions: not whitened, means added back
    basis, _ = np.linalg.qr(directions.T)  # (tokens, k) orthonormal, in the order of the correlations
    weights = np.abs(basis.T @ acts.T).sum(axis=1)
    weights = weights / weights.sum()
    return float(np.sum(weights * result.rho))


def cka(acts1: ArrayLike, acts2: ArrayLike) -> float:
    """Linear centered kernel alignment of two (neurons, tokens) arrays, as ``ecco.analysis.cka``.

    Why CKA: unlike CCA it needs no more tokens than neurons, and it is invariant to rotations and to
    scaling of either array (not to every invertible linear map, as CCA is).
    """
    x, y = _pair(acts1, acts2, None, "cka")
    if x.shape[1] < 3:
        raise ValueError(
            f"cka needs at least 3 tokens, got {x.shape[1]}: with 2 it is 1 whatever the activations; "
            "stack several texts with stack_tokens()"
        )
    fx = x - x.mean(axis=1, keepdims=True)
    fy = y - y.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(fx @ fx.T) * np.linalg.norm(fy @ fy.T)
    if norm == 0:
        raise ValueError("cka: one of the arrays is constant over the tokens, so there is nothing to compare")
    return float(np.linalg.norm(fx @ fy.T) ** 2 / norm)


# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class _Canonical:
    rho: np.ndarray  # (k,) canonical correlations, descending, k = min(neurons kept in x, in y)
    u: np.ndarray  # (kx, kx) left singular vectors of the whitened cross-covariance
    vt: np.ndarray  # (ky, ky) right singular vectors, as rows
    x_kept: np.ndarray  # (n1,) bool: neurons of x whose rescaled variance reached epsilon
    y_kept: np.ndarray  # (n2,) bool


def _check_dims(dims: int, name: str) -> int:
    if isinstance(dims, bool) or not isinstance(dims, (int, np.integer)) or dims < 1:
        raise ValueError(f"{name}: dims must be a positive integer, got {dims!r}")
    return int(dims)


def _pair(acts1: ArrayLike, acts2: ArrayLike, dims: int | None, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64 (neurons, tokens), cut to their first ``dims`` neurons when asked."""
    x = np.asarray(acts1, dtype=np.float64)
    y = np.asarray(acts2, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"{name} takes two (neurons, tokens) arrays; got shapes {x.shape} and {y.shape}")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{name}: both arrays must cover the same tokens; got {x.shape[1]} and {y.shape[1]} tokens "
            f"(shapes {x.shape} and {y.shape}, expected (neurons, tokens))"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"{name}: the activations contain NaN or infinite values")
    if dims is not None:
        dims = _check_dims(dims, name)
        x, y = x[:dims], y[:dims]  # as Ecco's examples slice: an array with fewer neurons keeps them all
    return x, y


def _need_tokens(n1: int, n2: int, tokens: int, name: str, what: str) -> None:
    """Refuse when the two sets would share directions (correlation 1) by construction alone."""
    needed = n1 + n2 + 1
    if tokens >= needed:
        return
    # the largest dims that would do: dims keeps at most dims of each array's n1 and n2
    largest = max((k for k in range(1, max(n1, n2) + 1) if min(k, n1) + min(k, n2) < tokens), default=0)
    hint = (
        f"Pass dims={largest} or fewer, stack more text with stack_tokens(), or use cka(), which has no such limit."
        if largest >= 1
        else "Stack more text with stack_tokens(), or use cka()."
    )
    raise ValueError(
        f"{name} needs at least {needed} tokens for {n1} + {n2} {what} (more tokens than both together), "
        f"got {tokens}; with fewer it reports correlations of 1 whatever the activations. {hint}"
    )


def _top_singular(acts: np.ndarray, dims: int) -> np.ndarray:
    """The centered activations expressed in their top ``dims`` singular directions: (dims, tokens)."""
    centered = acts - acts.mean(axis=1, keepdims=True)
    _, s, vt = np.linalg.svd(centered, full_matrices=False)
    return s[:dims, None] * vt[:dims]


def _inverse_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Inverse square root of a symmetric positive definite matrix (the ridge keeps it definite)."""
    values, vectors = np.linalg.eigh(matrix)
    values = np.clip(values, np.finfo(np.float64).tiny, None)
    return (vectors / np.sqrt(values)) @ vectors.T


def _canonical(x: np.ndarray, y: np.ndarray, epsilon: float) -> _Canonical:
    """CCA by whitening: the singular values of Sxx^-1/2 Sxy Syy^-1/2, regularized as Ecco does."""
    tokens = x.shape[1]
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    sxx = xc @ xc.T / (tokens - 1)
    syy = yc @ yc.T / (tokens - 1)
    sxy = xc @ yc.T / (tokens - 1)
    x_scale, y_scale = np.abs(sxx).max(), np.abs(syy).max()
    if x_scale == 0 or y_scale == 0:
        raise ValueError("one of the arrays is constant over the tokens, so there is nothing to correlate")
    sxx, syy, sxy = sxx / x_scale, syy / y_scale, sxy / np.sqrt(x_scale * y_scale)
    x_kept = np.diag(sxx) >= epsilon
    y_kept = np.diag(syy) >= epsilon
    sxx = sxx[np.ix_(x_kept, x_kept)] + epsilon * np.eye(int(x_kept.sum()))
    syy = syy[np.ix_(y_kept, y_kept)] + epsilon * np.eye(int(y_kept.sum()))
    sxy = sxy[np.ix_(x_kept, y_kept)]
    u, s, vt = np.linalg.svd(_inverse_sqrt(sxx) @ sxy @ _inverse_sqrt(syy))
    return _Canonical(np.abs(s), u, vt, x_kept, y_kept)


def _mass_cutoff(rho: np.ndarray, threshold: float) -> int:
    """How many leading correlations to average: the fewest whose sum reaches ``threshold`` of the total.

    As in Ecco, at most ``len(rho) - 1`` are chosen that way; if even those fall short, all are kept.
    """
    total = rho.sum()
    if total <= 0:
        return len(rho)
    prefix = np.concatenate([[0.0], np.cumsum(rho)[:-1]])  # prefix[i] = sum of the first i
    reached = np.nonzero(prefix / total >= threshold)[0]
    return int(reached[0]) if reached.size else len(rho)
