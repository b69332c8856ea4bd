"""NMF of neuron activations, as Ecco does it: factors x positions, plus neuron loadings per factor.

Why: Ecco's factor explorer decomposes the MLP activations of a range of layers into a few factors that
fire over tokens. Same settings as Ecco (negatives clipped to zero, sklearn's solver with init="random",
random_state=0, max_iter=500), but at every position, and from stored activations so another factor
count needs no model run. The solver is sklearn's, vectorized (``nmf_solver``): the same result in a
fraction of the time, its work bounded on long texts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecco_daemon.analysis.errors import InvalidArgument
from ecco_daemon.analysis.nmf_solver import MAX_ITER, factorize
from ecco_daemon.analysis.progress import CancelCheck


@dataclass
class NMFResult:
    factors: np.ndarray  # (K, S) float32: each factor's strength at every position
    components: np.ndarray  # (K, La * I) float32: each factor's neuron loadings, layer-major
    layers: np.ndarray  # (La,) the layers whose neurons were decomposed
    n_neurons_per_layer: int
    n_components: int
    reconstruction_error: float

    @property
    def nbytes(self) -> int:
        return int(self.factors.nbytes + self.components.nbytes + self.layers.nbytes)


def select_layers(activation_layers: np.ndarray, from_layer: int | None, to_layer: int | None) -> list[int]:
    """Rows of the stored activations for layers from_layer..to_layer-1 (Ecco's slice semantics)."""
    recorded = [int(x) for x in activation_layers]
    if from_layer is None and to_layer is None:
        return list(range(len(recorded)))
    if not recorded:
        raise InvalidArgument("this run recorded no neuron activations")
    start = min(recorded) if from_layer is None else from_layer
    stop = max(recorded) + 1 if to_layer is None else to_layer
    if not min(recorded) <= start < stop <= max(recorded) + 1:  # before any list is built from them
        raise InvalidArgument(
            f"from_layer ({start}) and to_layer ({stop}) must satisfy {min(recorded)} <= from_layer < to_layer "
            f"<= {max(recorded) + 1} (the recorded layers)"
        )
    absent = [layer for layer in range(start, stop) if layer not in recorded]
    if absent:
        raise InvalidArgument(
            f"{len(absent)} layer(s) from {absent[0]} have no recorded activations; recorded: {_spans(recorded)}"
        )
    return [recorded.index(layer) for layer in range(start, stop)]


def _spans(layers: list[int]) -> str:
    """Layer indexes as short runs ("0..5, 9"), so a message stays short whatever the model's depth."""
    runs: list[list[int]] = []
    for layer in sorted(layers):
        if runs and layer == runs[-1][1] + 1:
            runs[-1][1] = layer
        else:
            runs.append([layer, layer])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs)


def run_nmf(
    activations: np.ndarray,
    activation_layers: np.ndarray,
    n_components: int = 10,
    from_layer: int | None = None,
    to_layer: int | None = None,
    max_iter: int = MAX_ITER,
    check_cancelled: CancelCheck | None = None,
) -> NMFResult:
    """Decompose activations (La, S, I) of the chosen layers into ``n_components`` factors."""
    if n_components < 1:
        raise InvalidArgument(f"n_components must be at least 1, got {n_components}")
    rows = select_layers(activation_layers, from_layer, to_layer)
    chosen = activations[rows]  # (Lc, S, I)
    n_positions = chosen.shape[1]
    merged = np.concatenate(list(chosen), axis=1)  # (S, Lc * I): positions x neurons (and layers)
    merged = np.maximum(merged, 0).astype(np.float32)  # GELU/SiLU give small negatives
    k = min(n_components, n_positions)
    solved = factorize(merged, k, max_iter=max_iter, check_cancelled=check_cancelled)  # W (S, K), H (K, Lc * I)
    return NMFResult(
        factors=np.ascontiguousarray(solved.w.T, dtype=np.float32),
        components=solved.h.astype(np.float32, copy=False),
        layers=np.asarray(activation_layers)[rows].astype(np.int64),
        n_neurons_per_layer=int(chosen.shape[2]),
        n_components=k,
        reconstruction_error=solved.reconstruction_error,
    )
