"""Do two tools' attributions agree? Spearman rank correlation per output token, on the same tokens.

Why: speed only counts if the numbers are the same. Tools may pick different continuations if their
greedy choices differ on a near tie, so only output tokens whose whole prefix is identical are compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr


@dataclass
class Agreement:
    compared: int  # output tokens compared (identical prefixes)
    of: int  # output tokens generated
    minimum: float
    median: float

    def describe(self) -> str:
        if self.compared == 0:
            return "no common tokens"
        tail = "" if self.compared == self.of else f" ({self.compared}/{self.of} tokens)"
        return f"min {self.minimum:.4f} / median {self.median:.4f}{tail}"


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def per_token_spearman(a: np.ndarray, b: np.ndarray, n_input: int, n_compare: int) -> np.ndarray:
    """a, b (N, S): row n is explained by tokens 0 .. n_input + n - 1; returns (n_compare,) correlations."""
    rhos = []
    for n in range(n_compare):
        width = n_input + n
        rho = spearmanr(a[n, :width], b[n, :width]).statistic if width > 1 else 1.0
        rhos.append(1.0 if np.isnan(rho) and np.allclose(a[n, :width], b[n, :width]) else rho)
    return np.asarray(rhos, dtype=np.float64)


def agreement(a: np.ndarray, ids_a: list[int], b: np.ndarray, ids_b: list[int], n_input: int) -> Agreement:
    """Compare output tokens whose prefix (prompt and every earlier output token) is the same in both."""
    n_out = min(a.shape[0], b.shape[0])
    same_prefix = common_prefix(ids_a, ids_b)  # tokens equal from the start
    # output token n is compared when the tokens up to and including it match
    n_compare = max(0, min(n_out, same_prefix - n_input))
    if n_compare == 0:
        return Agreement(0, n_out, float("nan"), float("nan"))
    rhos = per_token_spearman(a, b, n_input, n_compare)
    return Agreement(n_compare, n_out, float(np.nanmin(rhos)), float(np.nanmedian(rhos)))
