"""The daemon's parameters for ``generate``, ``analyze`` and ``tokens.*`` (protocol/PROTOCOL.md), built in one place.

Why: the models of the Python client and the language server send the same requests; the defaults a
generation takes live here once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# What ``generate`` sends when the caller says nothing (AsyncLanguageModel.generate's defaults).
GENERATE_DEFAULTS: dict[str, Any] = {
    "do_sample": False, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "seed": None, "alternatives": 5,
    "array_dtype": "float32",
}


def generate_params(model: str | None, text: str | list[int], generate: int,
                    options: Mapping[str, Any]) -> dict[str, Any]:
    """A ``generate`` request: the defaults, then ``options``; a text is a prompt, a list holds token ids."""
    params: dict[str, Any] = {"generate": generate, **GENERATE_DEFAULTS, **options}
    if params["seed"] is None:
        del params["seed"]
    return _with_input(params, model, text, "prompt")


def analyze_params(model: str | None, text: str | list[int], attribution: Sequence[str],
                   options: Mapping[str, Any]) -> dict[str, Any]:
    """An ``analyze`` request: the text (or token ids) scored and attributed with ``attribution``."""
    return _with_input({"attribution": list(attribution), **options}, model, text, "text")


def encode_params(model: str | None, text: str | Sequence[str], add_special_tokens: bool) -> dict[str, Any]:
    """A ``tokens.encode`` request: one text or several."""
    return _with_model({"text": text if isinstance(text, str) else list(text),
                        "add_special_tokens": add_special_tokens}, model)


def decode_params(model: str | None, ids: Any, skip_special_tokens: bool) -> dict[str, Any]:
    """A ``tokens.decode`` request: one row of ids or several (lists, numpy arrays or tensors)."""
    return _with_model({"ids": plain_ids(ids), "skip_special_tokens": skip_special_tokens}, model)


def plain_ids(ids: Any) -> Any:
    """Ints, or nested lists of ints, from lists, numpy arrays or tensors (anything with ``tolist``)."""
    value = ids.tolist() if hasattr(ids, "tolist") else ids
    return int(value) if isinstance(value, int | float) else [plain_ids(v) for v in value]


def _with_model(params: dict[str, Any], model: str | None) -> dict[str, Any]:
    if model is not None:
        params["model"] = model
    return params


def _with_input(params: dict[str, Any], model: str | None, text: str | list[int], text_key: str) -> dict[str, Any]:
    _with_model(params, model)
    if isinstance(text, str):
        params[text_key] = text
    else:
        params["input_ids"] = [int(i) for i in text]
    return params
