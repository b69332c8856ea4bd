"""The blocking client is built from the async one: the same methods, signatures and docstrings."""

from __future__ import annotations

import inspect

import pytest

import ecco_client
import ecco_client.aio
from ecco_client.params import GENERATE_DEFAULTS, generate_params

TWINS = [
    (ecco_client.Client, ecco_client.aio.AsyncClient),
    (ecco_client.LanguageModel, ecco_client.AsyncLanguageModel),
    (ecco_client.RequestHandle, ecco_client.aio.RequestStream),
]


def public(cls: type) -> dict[str, object]:
    return {n: m for n, m in inspect.getmembers(cls) if not n.startswith("_")}


@pytest.mark.parametrize(("blocking", "core"), TWINS)
def test_every_async_method_has_a_blocking_twin_with_its_parameters(blocking: type, core: type) -> None:
    twins = public(blocking)
    for name, member in public(core).items():
        assert name in twins, f"{blocking.__name__} lacks {name}"
        if callable(member):
            assert list(inspect.signature(twins[name]).parameters) == list(inspect.signature(member).parameters)
            if name not in vars(blocking):  # derived, not written again
                assert twins[name].__doc__ == member.__doc__


def test_the_async_protocols_have_blocking_spellings() -> None:
    assert hasattr(ecco_client.Client, "__enter__") and hasattr(ecco_client.Client, "__exit__")
    assert hasattr(ecco_client.RequestHandle, "__iter__")


def test_generate_defaults_are_the_models_defaults() -> None:
    signature = inspect.signature(ecco_client.AsyncLanguageModel.generate)
    assert {n: signature.parameters[n].default for n in GENERATE_DEFAULTS} == GENERATE_DEFAULTS


def test_generate_params_take_a_prompt_or_token_ids() -> None:
    assert generate_params("m", "hi", 3, {"seed": 7})["prompt"] == "hi"
    ids = generate_params(None, [1, 2], 3, {})
    assert ids["input_ids"] == [1, 2] and "seed" not in ids and "model" not in ids
