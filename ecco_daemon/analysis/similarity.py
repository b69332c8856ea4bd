"""Similarity of two layers' representations: CCA, SVCCA, PWCCA and linear CKA.

Why: Ecco offered these (through Google's svcca code) to compare layers. This is the same math written
afresh: inputs are (neurons, datapoints) arrays, datapoints being token positions, and each function
returns a number in [0, 1] (1: one representation is a linear transform of the other).
- cca: mean canonical correlation over the directions that hold 98% of the correlation mass;
- svcca: keep the top ``dims`` singular directions of each, then the mean canonical correlation;
- pwcca: canonical correlations weighted by how much of the first representation each direction explains;
- cka: linear centered kernel alignment (invariant to orthogonal transforms and isotropic scaling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecco_daemon.analysis.errors import InvalidArgument, UnknownName

EPSILON = 1e-10


@dataclass
class CanonicalCorrelations:
    rho: np.ndarray  # (K,) canonical correlations, descending
    x_kept: np.ndarray  # (n1,) bool: neurons of x with non-negligible variance
    y_kept: np.ndarray  # (n2,) bool
    x_weights: np.ndarray  # (K, n1 kept) rows map centered x to its canonical variates


def _inverse_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Inverse square root of a symmetric positive semi-definite matrix (pseudo-inverse on the null space)."""
    values, vectors = np.linalg.eigh(matrix)
    inv = np.where(
        values > EPSILON * max(values.max(), EPSILON), 1.0 / np.sqrt(np.clip(values, EPSILON, None)), 0
    )
    return (vectors * inv) @ vectors.T


def _check(x: np.ndarray, y: np.ndarray, need_more_points: bool) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise InvalidArgument(
            f"need (neurons, datapoints) arrays with equal datapoints; got {x.shape}, {y.shape}"
        )
    if need_more_points and max(x.shape[0], y.shape[0]) >= x.shape[1]:
        raise InvalidArgument(
            f"CCA needs more datapoints ({x.shape[1]} positions) than neurons ({x.shape[0]}, {y.shape[0]}); "
            "use svcca with fewer dims, or cka"
        )
    return x, y


def canonical_correlations(x: np.ndarray, y: np.ndarray, epsilon: float = EPSILON) -> CanonicalCorrelations:
    """CCA of x (n1, m) and y (n2, m): singular values of Sxx^-1/2 Sxy Syy^-1/2."""
    n1 = x.shape[0]
    cov = np.cov(x, y)  # (n1 + n2, n1 + n2)
    sxx, sxy, syy = cov[:n1, :n1], cov[:n1, n1:], cov[n1:, n1:]
    x_scale, y_scale = np.abs(sxx).max(), np.abs(syy).max()  # rescaling for stability
    if x_scale == 0 or y_scale == 0:
        return CanonicalCorrelations(
            np.zeros(1), np.zeros(n1, bool), np.zeros(y.shape[0], bool), np.zeros((1, 0))
        )
    sxx, syy, sxy = sxx / x_scale, syy / y_scale, sxy / np.sqrt(x_scale * y_scale)
    x_kept = np.abs(np.diag(sxx)) >= epsilon
    y_kept = np.abs(np.diag(syy)) >= epsilon
    sxx = sxx[np.ix_(x_kept, x_kept)] + epsilon * np.eye(x_kept.sum())
    syy = syy[np.ix_(y_kept, y_kept)] + epsilon * np.eye(y_kept.sum())
    sxy = sxy[np.ix_(x_kept, y_kept)]
    inv_x, inv_y = _inverse_sqrt(sxx), _inverse_sqrt(syy)
    u, rho, _vt = np.linalg.svd(inv_x @ sxy @ inv_y)
    k = min(len(rho), x_kept.sum(), y_kept.sum())
    return CanonicalCorrelations(np.clip(np.abs(rho[:k]), 0, 1), x_kept, y_kept, (u[:, :k].T @ inv_x))


def _mass_cutoff(rho: np.ndarray, threshold: float = 0.98) -> int:
    """How many leading correlations hold ``threshold`` of their total (trailing zeros dropped)."""
    total = rho.sum()
    if total <= 0:
        return len(rho)
    return int(np.searchsorted(np.cumsum(rho) / total, threshold) + 1)


def cca(x: np.ndarray, y: np.ndarray) -> float:
    x, y = _check(x, y, need_more_points=True)
    rho = canonical_correlations(x, y).rho
    return float(np.mean(rho[: _mass_cutoff(rho)]))


def svcca(x: np.ndarray, y: np.ndarray, dims: int = 20) -> float:
    x, y = _check(x, y, need_more_points=False)
    dims = min(dims, x.shape[1] - 1, x.shape[0], y.shape[0])
    if dims < 1:
        raise InvalidArgument("svcca needs at least two datapoints")
    reduced = []
    for acts in (x, y):
        centered = acts - acts.mean(axis=1, keepdims=True)
        _u, s, vt = np.linalg.svd(centered, full_matrices=False)
        reduced.append(s[:dims, None] * vt[:dims])  # (dims, m)
    return float(np.mean(canonical_correlations(reduced[0], reduced[1]).rho))


def pwcca(x: np.ndarray, y: np.ndarray) -> float:
    x, y = _check(x, y, need_more_points=True)
    result = canonical_correlations(x, y)
    kept = x[result.x_kept]
    variates = result.x_weights @ (kept - kept.mean(axis=1, keepdims=True))  # (K, m)
    basis, _ = np.linalg.qr(variates.T)  # (m, K) orthonormal canonical directions
    weights = np.abs(basis.T @ kept.T).sum(axis=1)  # (K,) how much of x each direction explains
    weights = weights / weights.sum()
    return float(np.sum(weights * result.rho))


def cka(x: np.ndarray, y: np.ndarray) -> float:
    x, y = _check(x, y, need_more_points=False)
    fx = (x - x.mean(axis=1, keepdims=True)).T  # (m, n1)
    fy = (y - y.mean(axis=1, keepdims=True)).T
    cross = np.linalg.norm(fx.T @ fy) ** 2
    norm = np.linalg.norm(fx.T @ fx) * np.linalg.norm(fy.T @ fy)
    return float(cross / norm) if norm > 0 else 0.0


SIMILARITY_METHODS = {"cca": cca, "svcca": svcca, "pwcca": pwcca, "cka": cka}


def similarity(method: str, x: np.ndarray, y: np.ndarray, **kwargs: int) -> float:
    fn = SIMILARITY_METHODS.get(method)
    if fn is None:
        raise UnknownName("similarity method", method, SIMILARITY_METHODS)
    return fn(x, y, **kwargs)
