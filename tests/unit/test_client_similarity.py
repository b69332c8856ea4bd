"""The client's CCA, SVCCA, PWCCA and CKA give Ecco's numbers, and refuse where a number would mean nothing.

Ecco's values were computed once by tests/fixtures/make_similarity_fixture.py with Ecco 0.1.2's own
``ecco.analysis`` and stored in similarity_ecco.npz. Both sides compute in float64 on the same inputs; the
differences seen are about 1e-13 relative (rounding in different but equivalent matrix steps), so 1e-9 is
a tight tolerance with room for other BLAS builds.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ecco_client.similarity import cca, cka, pwcca, stack_tokens, svcca

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "similarity_ecco.npz"
REL = 1e-9
RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def ecco() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return {key: data[key] for key in data.files}


def _inputs(ecco: dict[str, np.ndarray], case: str) -> tuple[np.ndarray, np.ndarray]:
    return ecco[f"{case}_x"].astype(np.float64), ecco[f"{case}_y"].astype(np.float64)


def _expected(ecco: dict[str, np.ndarray], key: str) -> float:
    return float(ecco[f"ecco_{key}"])


# --- agreement with Ecco ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["main", "small", "dropped"])
@pytest.mark.parametrize("name", ["cca", "pwcca", "cka"])
def test_agrees_with_ecco(ecco, case: str, name: str) -> None:
    fn = {"cca": cca, "pwcca": pwcca, "cka": cka}[name]
    x, y = _inputs(ecco, case)
    assert fn(x, y) == pytest.approx(_expected(ecco, f"{case}_{name}"), rel=REL)


@pytest.mark.parametrize("dims", [5, 10, 20, 40])
def test_svcca_agrees_with_ecco(ecco, dims: int) -> None:
    x, y = _inputs(ecco, "main")
    assert svcca(x, y, dims=dims) == pytest.approx(_expected(ecco, f"main_svcca_{dims}"), rel=REL)


def test_svcca_agrees_with_ecco_on_the_other_cases(ecco) -> None:
    assert svcca(*_inputs(ecco, "small"), dims=4) == pytest.approx(_expected(ecco, "small_svcca_4"), rel=REL)
    assert svcca(*_inputs(ecco, "dropped"), dims=8) == pytest.approx(_expected(ecco, "dropped_svcca_8"), rel=REL)
    unrelated = _inputs(ecco, "unrelated")  # 20 + 20 components over 50 tokens is still enough
    assert svcca(*unrelated) == pytest.approx(_expected(ecco, "unrelated_svcca_20"), rel=REL)


def test_svcca_default_dims_is_eccos_20(ecco) -> None:
    x, y = _inputs(ecco, "main")
    assert svcca(x, y) == pytest.approx(_expected(ecco, "main_svcca_20"), rel=REL)


@pytest.mark.parametrize("dims", [10, 25])
def test_dims_keeps_the_first_neurons_as_eccos_slicing(ecco, dims: int) -> None:
    x, y = _inputs(ecco, "main")  # Ecco was called on x[:dims], y[:dims]
    assert cca(x, y, dims=dims) == pytest.approx(_expected(ecco, f"main_cca_dims{dims}"), rel=REL)
    assert pwcca(x, y, dims=dims) == pytest.approx(_expected(ecco, f"main_pwcca_dims{dims}"), rel=REL)
    assert cca(x, y, dims=dims) == cca(x[:dims], y[:dims])


def test_self_similarity_as_ecco(ecco) -> None:
    x, _ = _inputs(ecco, "main")
    # Ecco's epsilon ridge keeps CCA of an array with itself just under 1; the same here.
    assert cca(x, x) == pytest.approx(_expected(ecco, "main_cca_self"), rel=REL)
    assert cka(x, x) == pytest.approx(1.0, rel=1e-12)


def test_float32_input_is_accepted(ecco) -> None:
    x, y = ecco["main_x"], ecco["main_y"]  # stored as float32; computed in float64 either way
    assert x.dtype == np.float32
    assert cca(x, y) == pytest.approx(_expected(ecco, "main_cca"), rel=REL)


# --- too few tokens ------------------------------------------------------------------------------------------------


def test_too_few_tokens_is_an_error_where_ecco_gave_a_meaningless_number(ecco) -> None:
    x, y = _inputs(ecco, "unrelated")  # independent noise, 30 + 30 neurons over 50 tokens
    assert _expected(ecco, "unrelated_cca") > 0.7  # Ecco: high "similarity" of unrelated noise
    for fn in (cca, pwcca):
        with pytest.raises(ValueError) as caught:
            fn(x, y)
        message = str(caught.value)
        assert "at least 61 tokens" in message and "got 50" in message
        assert "dims=24" in message and "stack_tokens" in message and "cka" in message
    assert 0 < cca(x, y, dims=24) < 1  # the advice works


def test_too_few_tokens_for_svcca_names_the_tokens_needed_and_dims() -> None:
    x, y = RNG.standard_normal((50, 30)), RNG.standard_normal((50, 30))
    with pytest.raises(ValueError, match=re.escape("svcca needs at least 41 tokens")) as caught:
        svcca(x, y)  # Ecco's default 20 components over 30 tokens: every correlation would be 1
    assert "dims=14" in str(caught.value)
    assert 0 < svcca(x, y, dims=14) < 1


def test_too_few_tokens_with_unequal_widths_suggests_a_dims_that_works() -> None:
    x, y = RNG.standard_normal((5, 50)), RNG.standard_normal((100, 50))
    with pytest.raises(ValueError, match="at least 106 tokens") as caught:
        cca(x, y)
    largest = int(re.search(r"dims=(\d+)", str(caught.value)).group(1))
    assert largest == 44  # 5 + 44 neurons over 50 tokens
    cca(x, y, dims=largest)
    with pytest.raises(ValueError, match="at least 51 tokens"):
        cca(x, y, dims=largest + 1)


def test_cca_at_the_limit_is_not_trivially_one() -> None:
    x, y = RNG.standard_normal((10, 21)), RNG.standard_normal((10, 21))
    assert cca(x, y) < 0.999
    with pytest.raises(ValueError, match="at least 21 tokens"):
        cca(x[:, :20], y[:, :20])


def test_svcca_dims_larger_than_the_array() -> None:
    x, y = RNG.standard_normal((8, 100)), RNG.standard_normal((30, 100))
    with pytest.raises(ValueError, match="acts1 is 8 neurons x 100 tokens and has at most 8"):
        svcca(x, y, dims=20)


@pytest.mark.parametrize("dims", [0, -3, 2.5, True, "5"])
def test_dims_must_be_a_positive_integer(dims) -> None:
    x = RNG.standard_normal((4, 40))
    for fn in (cca, pwcca, svcca):
        with pytest.raises(ValueError, match="dims must be a positive integer"):
            fn(x, x, dims=dims)


# --- sanity ----------------------------------------------------------------------------------------------------------


def test_identity_and_invariances() -> None:
    x = RNG.standard_normal((6, 200))
    mixing = RNG.standard_normal((6, 6)) + 3 * np.eye(6)
    rotation, _ = np.linalg.qr(RNG.standard_normal((6, 6)))
    assert cca(x, mixing @ x + 4.0) == pytest.approx(1.0, abs=1e-6)  # any invertible linear map, any offset
    assert pwcca(x, mixing @ x) == pytest.approx(1.0, abs=1e-6)
    assert svcca(x, mixing @ x, dims=6) == pytest.approx(1.0, abs=1e-6)
    assert cka(x, 2.5 * rotation @ x + 1.0) == pytest.approx(1.0, rel=1e-12)  # rotation and scale only
    assert cka(x, mixing @ x) < 0.999


def test_symmetry() -> None:
    x, y = RNG.standard_normal((5, 120)), RNG.standard_normal((7, 120))
    y[:3] += x[:3]
    assert cca(x, y) == pytest.approx(cca(y, x), rel=1e-10)
    assert svcca(x, y, dims=4) == pytest.approx(svcca(y, x, dims=4), rel=1e-10)
    assert cka(x, y) == pytest.approx(cka(y, x), rel=1e-12)


def test_pwcca_takes_its_weights_from_the_narrower_array() -> None:
    # Ecco's pwcca fails when acts2 is the narrower one; here it mirrors the other case.
    # Centered: Ecco adds the neuron means back after the canonical rotation, which makes its pwcca depend on
    # the (arbitrary) signs of the singular vectors whenever the means are not zero.
    x, y = RNG.standard_normal((7, 150)), RNG.standard_normal((4, 150))
    x[:2] += y[:2]
    x, y = x - x.mean(axis=1, keepdims=True), y - y.mean(axis=1, keepdims=True)
    assert pwcca(x, y) == pytest.approx(pwcca(y, x), rel=1e-10)


def test_unrelated_is_low_and_related_is_high() -> None:
    shared = RNG.standard_normal((3, 800))
    x = np.vstack([shared, RNG.standard_normal((5, 800))])
    mixed = RNG.standard_normal((3, 3)) @ shared + 0.3 * RNG.standard_normal((3, 800))
    y = np.vstack([mixed, RNG.standard_normal((5, 800))])
    noise = RNG.standard_normal((8, 800))
    for fn in (cca, pwcca, cka):
        assert fn(x, y) > fn(x, noise) + 0.2, fn.__name__
    assert cka(x, noise) < 0.05


def test_values_are_plain_floats_in_unit_interval() -> None:
    x, y = RNG.standard_normal((6, 100)), RNG.standard_normal((6, 100))
    for value in (cca(x, y), svcca(x, y, dims=3), pwcca(x, y), cka(x, y)):
        assert type(value) is float and 0 <= value <= 1


def test_shape_errors() -> None:
    x = RNG.standard_normal((4, 40))
    with pytest.raises(ValueError, match="same tokens; got 40 and 39"):
        cca(x, x[:, :39])
    with pytest.raises(ValueError, match=r"two \(neurons, tokens\) arrays"):
        cka(x[0], x[0])
    with pytest.raises(ValueError, match="NaN"):
        cka(x, np.where(x > 1, np.nan, x))
    with pytest.raises(ValueError, match="constant"):
        cca(x, np.ones_like(x))
    with pytest.raises(ValueError, match="constant"):
        cka(x, np.ones_like(x))
    with pytest.raises(ValueError, match="at least 3 tokens"):
        cka(x[:, :2], x[:, :2])


# --- stack_tokens ----------------------------------------------------------------------------------------------------


def test_stack_tokens_joins_texts_along_the_token_axis() -> None:
    texts = [RNG.standard_normal((6, n)) for n in (9, 14, 3)]
    stacked = stack_tokens(texts)
    assert stacked.shape == (6, 26)
    np.testing.assert_array_equal(stacked[:, 9:23], texts[1])
    layers = [RNG.standard_normal((4, 6, n)) for n in (9, 14)]  # (layers, neurons, tokens) as Ecco's arrays
    assert stack_tokens(layers).shape == (4, 6, 23)


def test_stack_tokens_makes_cca_possible_over_a_corpus() -> None:
    mixing = RNG.standard_normal((12, 12))
    texts = [RNG.standard_normal((12, 15)) for _ in range(4)]
    with pytest.raises(ValueError, match="at least 25 tokens"):
        cca(texts[0], mixing @ texts[0])
    corpus = stack_tokens(texts)
    assert cca(corpus, mixing @ corpus) == pytest.approx(1.0, abs=1e-6)


def test_stack_tokens_errors() -> None:
    with pytest.raises(ValueError, match="at least one"):
        stack_tokens([])
    with pytest.raises(ValueError, match="all but the token axis"):
        stack_tokens([np.zeros((6, 3)), np.zeros((5, 3))])
    with pytest.raises(ValueError, match=r"\(\.\.\., neurons, tokens\)"):
        stack_tokens([np.zeros(3)])
