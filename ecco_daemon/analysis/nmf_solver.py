"""scikit-learn's NMF coordinate-descent solver, vectorized, with a bound on the work of one call.

Why not sklearn's own: on activations of a few dozen positions by tens of thousands of neurons (SmolLM2:
30 layers x 1,536), every iteration reads the whole matrix twice, and sklearn runs up to 500 of them (100
tokens: all 500, 15 s and more on two cores). Here the same updates, vectorized per factor over
factor-major rows, in the same order from the same random start, give sklearn's result to float
rounding (tests check it) somewhat faster; and a large input stops after a bounded amount of work
(``WORK_BUDGET`` matrix entries read, summed over iterations): the result is then sklearn's after that
many iterations (on SmolLM2's 100-token activations, 21 iterations: a reconstruction error 0.11% above
sklearn's after 500). Inputs of a few dozen positions converge well within the budget, as in sklearn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from ecco_daemon.analysis.progress import CancelCheck

MAX_ITER = 500  # sklearn's default, and Ecco's setting
TOL = 1e-4  # sklearn's default
WORK_BUDGET = 1e8  # entries of X read over all iterations: 21 iterations at 100 x 46,080, 114 at 19 x 46,080


@dataclass
class Factorization:
    w: np.ndarray  # (S, K) float32
    h: np.ndarray  # (K, F) float32
    n_iter: int
    reconstruction_error: float  # Frobenius norm of X - W H


def iteration_cap(shape: tuple[int, int], max_iter: int = MAX_ITER, budget: float = WORK_BUDGET) -> int:
    """Iterations allowed for a matrix of this shape: sklearn's max_iter, or fewer when too large."""
    return int(max(1, min(max_iter, budget // max(1, shape[0] * shape[1]))))


def random_start(x: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's ``init="random"``: |N(0, 1)| scaled by sqrt(mean(X) / k), H drawn before W."""
    avg = np.sqrt(x.mean() / k)
    rng = np.random.RandomState(seed)
    h = avg * rng.standard_normal(size=(k, x.shape[1])).astype(x.dtype, copy=False)
    w = avg * rng.standard_normal(size=(x.shape[0], k)).astype(x.dtype, copy=False)
    return np.abs(w), np.abs(h)


def _sweep(m: np.ndarray, numerator: np.ndarray, gram: np.ndarray) -> float:
    """One pass of coordinate descent over every coefficient of ``m`` (K, N), factor by factor, every
    column at once (columns are independent), as sklearn's ``_update_cdnmf_fast`` does one coefficient at
    a time; returns the projected-gradient norm it saw (sklearn's "violation"). Factor-major rows keep
    each update a contiguous pass over memory."""
    violation = 0.0
    for t in range(m.shape[0]):
        grad = gram[t] @ m  # (N,)
        grad -= numerator[t]
        row = m[t]
        violation += float(np.abs(np.where(row == 0, np.minimum(grad, 0), grad)).sum())
        if gram[t, t] != 0:
            grad /= gram[t, t]
            np.subtract(row, grad, out=row)
            np.maximum(row, 0, out=row)
    return violation


def factorize(x: np.ndarray, k: int, max_iter: int = MAX_ITER, tol: float = TOL,
              budget: float = WORK_BUDGET, check_cancelled: CancelCheck | None = None) -> Factorization:
    """min ||X - W H|| over W, H >= 0 by sklearn's coordinate descent: x (S, F) float32, non-negative.
    ``check_cancelled`` is called before every iteration and raises to stop (a cancel, the job's time limit)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _factorize(x, k, max_iter, tol, budget, check_cancelled)


def _factorize(x: np.ndarray, k: int, max_iter: int, tol: float, budget: float,
               check_cancelled: CancelCheck | None) -> Factorization:
    """The iterations, on one BLAS thread: their products (K x S by S x F) are bound by reading X, not by
    arithmetic, and more threads only fight over the cores (two to three times slower on a busy host)."""
    w, h = random_start(x, k)
    wt = np.ascontiguousarray(w.T)  # (K, S): both factors factor-major
    cap = iteration_cap(x.shape, max_iter, budget)
    first = 0.0
    n_iter = 0
    for n_iter in range(1, cap + 1):
        if check_cancelled is not None:
            check_cancelled()
        violation = _sweep(wt, (x @ h.T).T, h @ h.T)  # W, with X H^T and H H^T
        violation += _sweep(h, wt @ x, wt @ wt.T)  # H, with W^T X and W^T W
        if n_iter == 1:
            first = violation
        if first == 0 or violation / first <= tol:
            break
    w = np.ascontiguousarray(wt.T)
    residual = float(np.linalg.norm(x - w @ h))
    return Factorization(w, h, n_iter, residual)
