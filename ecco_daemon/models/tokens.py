"""Token ids to the text pieces people see: one place, so every view shows tokens the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def token_texts(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Each token as the text it adds (leading spaces kept), not as a vocabulary entry like 'ĠParis'."""
    return [tokenizer.decode([int(i)], skip_special_tokens=False, clean_up_tokenization_spaces=False) for i in ids]


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Tokenize as the model expects, special tokens (e.g. a BOS) included, as Ecco does."""
    return [int(i) for i in tokenizer(text, add_special_tokens=True)["input_ids"]]
