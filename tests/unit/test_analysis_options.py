"""The one options type: names made canonical and checked when it is built, so nothing downstream re-checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ecco_daemon.analysis.errors import InvalidArgument, UnknownName
from ecco_daemon.analysis.options import AnalysisOptions


def test_aliases_become_canonical_names_once_in_request_order() -> None:
    options = AnalysisOptions(attribution=("ig", "saliency", "integrated_gradients", "input_x_gradient"))
    assert options.attribution == ("integrated_gradients", "gradient", "grad_x_input")
    assert AnalysisOptions(attribution="ig").attribution == ("integrated_gradients",)  # one name, not letters
    assert AnalysisOptions().attribution == ()


def test_an_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownName) as info:
        AnalysisOptions(attribution=("gradient", "lime"))
    assert "lime" in str(info.value) and "grad_x_input" in str(info.value) and "ig" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("score", "loss", "log_prob, logit, prob"),
        ("autocast", "int8", "bfloat16, float16"),
        ("backward_precision", "half", "full, reduced"),
        ("ig_method", "simpson", "gausslegendre, riemann_trapezoid"),
    ],
)
def test_each_named_choice_is_refused_naming_the_field_and_the_valid_values(field, value, valid) -> None:
    with pytest.raises(UnknownName) as info:
        AnalysisOptions(**{field: value})
    assert str(info.value) == f"unknown {field} {value!r}; valid: {valid}"


def test_counts_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="at least 1 step"):
        AnalysisOptions(steps=0)
    with pytest.raises(InvalidArgument, match="topk"):
        AnalysisOptions(topk=0)


def test_ids_and_layers_become_int_tuples() -> None:
    assert AnalysisOptions(foils=3).foils == (3,)
    assert AnalysisOptions(foils=np.array([4, 5])).foils == (4, 5)
    assert AnalysisOptions(foils=()).foils is None
    assert AnalysisOptions(activation_layers=[-1, 0]).activation_layers == (-1, 0)
    assert AnalysisOptions(activation_layers=[]).activation_layers is None


def test_options_are_frozen_and_cost_counts_backward_passes() -> None:
    options = AnalysisOptions(attribution=("ig", "gradient"), steps=8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.steps = 9  # type: ignore[misc]
    assert options.cost(10) == 10 * (8 + 1)
    assert AnalysisOptions().cost(10) == 10  # no attribution: one pass
