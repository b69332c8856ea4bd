"""Token ids to the text pieces people see, and texts to ids: one place, so every view and every
client sees tokens the same way."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any


def token_texts(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Each token as the text it adds (leading spaces kept), not as a vocabulary entry like 'ĠParis'.

    Memoized per tokenizer: a view of every position's layer predictions names tens of thousands of
    tokens, a few hundred of them distinct, and one decode costs microseconds.
    """
    known = _TEXTS.get(tokenizer)
    if known is None:
        known = _TEXTS.setdefault(tokenizer, {})
    texts = []
    for i in ids:
        text = known.get(int(i))
        if text is None:
            text = tokenizer.decode([int(i)], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            known[int(i)] = text
        texts.append(text)
    return texts


# Token texts by tokenizer (held weakly: a model unloaded takes its entry with it); at most the vocabulary.
_TEXTS: weakref.WeakKeyDictionary[Any, dict[int, str]] = weakref.WeakKeyDictionary()


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Tokenize as the model expects, special tokens (e.g. a BOS) included, as Ecco does."""
    return [int(i) for i in tokenizer(text, add_special_tokens=True)["input_ids"]]


def encode_texts(tokenizer: Any, texts: Sequence[str], add_special_tokens: bool = True) -> list[list[int]]:
    """Token ids of each text, as the tokenizer's own call gives them (no padding, no truncation).

    Why no padding here: padding or truncation options mutate a fast tokenizer that every request
    shares; the client pads, if asked, from these lists.
    """
    if not texts:
        return []  # a fast tokenizer called on no texts raises IndexError
    encoded = tokenizer(list(texts), add_special_tokens=add_special_tokens)["input_ids"]
    return [[int(i) for i in ids] for ids in encoded]


def vocabulary_pieces(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Each id as its vocabulary entry ('ĠParis'), what ``convert_ids_to_tokens`` gives."""
    return [str(piece) for piece in tokenizer.convert_ids_to_tokens([int(i) for i in ids])]


def decode_ids(tokenizer: Any, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
    """The text of a whole sequence of ids."""
    return str(tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens))


def special_tokens(tokenizer: Any) -> dict[str, dict[str, Any]]:
    """The tokenizer's named special tokens (bos_token, eos_token, pad_token…) with their ids."""
    named = getattr(tokenizer, "special_tokens_map", {}) or {}
    return {name: {"token": str(token), "id": int(tokenizer.convert_tokens_to_ids(str(token)))}
            for name, token in named.items() if isinstance(token, str)}
