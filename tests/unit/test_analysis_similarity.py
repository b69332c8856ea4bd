"""CCA, SVCCA, PWCCA and CKA against cases whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cross_decomposition import CCA

from ecco_daemon.analysis.errors import InvalidArgument, UnknownName
from ecco_daemon.analysis.similarity import canonical_correlations, cca, cka, pwcca, similarity, svcca

RNG = np.random.default_rng(0)


def _random(neurons: int, points: int) -> np.ndarray:
    return RNG.standard_normal((neurons, points))


def test_cka_identity_orthogonal_and_scale_invariance() -> None:
    x = _random(6, 40)
    q, _ = np.linalg.qr(RNG.standard_normal((6, 6)))
    assert cka(x, x) == pytest.approx(1.0)
    assert cka(x, 3.5 * q @ x) == pytest.approx(1.0)
    assert cka(x, x + 10.0) == pytest.approx(1.0)  # centered
    assert cka(x, _random(6, 40)) < 0.5


def test_cka_by_hand_one_neuron_each() -> None:
    # One neuron each: linear CKA is the squared Pearson correlation.
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    y = np.array([[1.0, 3.0, 2.0, 5.0]])
    r = np.corrcoef(x[0], y[0])[0, 1]
    assert cka(x, y) == pytest.approx(r**2)


def test_cca_by_hand_and_invariance() -> None:
    x = np.array([[1.0, 2.0, 3.0, 4.0, 6.0]])
    y = np.array([[2.0, 1.0, 4.0, 3.0, 5.0]])
    assert cca(x, y) == pytest.approx(abs(np.corrcoef(x[0], y[0])[0, 1]), abs=1e-6)
    x = _random(5, 200)
    mixing = RNG.standard_normal((5, 5)) + 3 * np.eye(5)
    assert cca(x, mixing @ x) == pytest.approx(1.0, abs=1e-6)
    assert pwcca(x, mixing @ x) == pytest.approx(1.0, abs=1e-6)
    assert cca(x, _random(5, 200)) < 0.3


def test_first_canonical_correlation_matches_sklearn() -> None:
    x = _random(3, 300)
    y = np.vstack([x[0] + 0.5 * RNG.standard_normal(300), RNG.standard_normal((2, 300))])
    reference = CCA(n_components=1, max_iter=2000, tol=1e-10).fit(x.T, y.T)
    u, v = reference.transform(x.T, y.T)
    expected = abs(np.corrcoef(u[:, 0], v[:, 0])[0, 1])
    assert canonical_correlations(x, y).rho[0] == pytest.approx(expected, abs=1e-4)


def test_svcca_keeps_the_top_directions() -> None:
    signal = _random(3, 100)
    x = np.vstack([10 * signal, 0.01 * _random(7, 100)])
    y = np.vstack([10 * (RNG.standard_normal((3, 3)) + 2 * np.eye(3)) @ signal, 0.01 * _random(7, 100)])
    assert svcca(x, y, dims=3) == pytest.approx(1.0, abs=1e-4)
    assert svcca(x, x, dims=20) == pytest.approx(1.0, abs=1e-3)  # epsilon-regularized tiny directions
    assert svcca(x, y, dims=10) < 0.99


def test_pwcca_weights_by_explained_variance() -> None:
    shared = _random(1, 300)
    x = np.vstack([10 * shared, 0.1 * _random(1, 300)])  # dominated by the shared direction
    y = np.vstack([shared, _random(1, 300)])
    rho = canonical_correlations(x, y).rho
    assert rho[0] > 0.99 and rho[1] < 0.3
    assert pwcca(x, y) > 0.95 > rho.mean()  # the correlated direction explains x, so it carries the weight
    swapped = np.vstack([10 * _random(1, 300), 0.1 * shared])  # now x is mostly uncorrelated noise
    assert pwcca(swapped, y) < 0.3


def test_errors() -> None:
    with pytest.raises(InvalidArgument, match="more datapoints"):
        cca(_random(10, 5), _random(10, 5))
    with pytest.raises(InvalidArgument, match="equal datapoints"):
        cka(_random(3, 5), _random(3, 6))
    with pytest.raises(UnknownName, match="cka"):
        similarity("procrustes", _random(3, 5), _random(3, 5))
