"""``lm.tokenizer``: called like a Hugging Face tokenizer, tokenized by the daemon's own tokenizer.

Why through the daemon: the ids must be exactly the ones the daemon's model uses, and a thin client
has neither the tokenizer files nor transformers. Each call is one ``tokens.encode`` or
``tokens.decode`` request (control operations, answered at once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ecco_client.ecco.notes import note
from ecco_client.ecco.tensors import as_return_tensors, to_numpy

BATCH = 64  # sequences per request: the daemon's limit


class BatchEncoding(dict):
    """What a Hugging Face tokenizer call returns: a dict that also reads as attributes (``enc.input_ids``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device: Any) -> BatchEncoding:
        """Tensors moved to ``device`` (as Hugging Face's); lists and numpy arrays stay as they are."""
        return BatchEncoding({k: v.to(device) if hasattr(v, "to") else v for k, v in self.items()})


class RemoteTokenizer:
    """The model's tokenizer, run by the daemon; ``description`` is the model's entry in ``models.list``."""

    def __init__(self, model: Any, description: dict[str, Any]) -> None:
        self._model = model
        self._specials: dict[str, dict[str, Any]] = description.get("special_tokens") or {}
        self.vocab_size = int(description.get("vocab_size") or 0)
        self._size = int(description.get("tokenizer_size") or self.vocab_size)
        self.name_or_path = description.get("source", description.get("name", ""))

    def __call__(self, text: str | Sequence[str], add_special_tokens: bool = True, padding: bool | str = False,
                 return_tensors: str | None = None, return_attention_mask: bool = True,
                 **ignored: Any) -> BatchEncoding:
        if ignored:
            note(f"tokenizer arguments not supported here, ignored: {', '.join(sorted(ignored))}")
        rows = self._encode([text] if isinstance(text, str) else list(text), add_special_tokens)["input_ids"]
        masks = [[1] * len(r) for r in rows]
        if padding and padding != "do_not_pad":
            rows, masks = self._pad(rows, masks)
        if return_tensors is not None and len({len(r) for r in rows}) > 1:
            raise ValueError("texts of different lengths make no tensor: pass padding=True")
        if isinstance(text, str) and return_tensors is None:
            rows, masks = rows[0], masks[0]
        encoding = BatchEncoding(input_ids=as_return_tensors(rows, return_tensors))
        if return_attention_mask:
            encoding["attention_mask"] = as_return_tensors(masks, return_tensors)
        return encoding

    def encode(self, text: str, add_special_tokens: bool = True, return_tensors: str | None = None) -> Any:
        ids = self._encode([text], add_special_tokens)["input_ids"][0]
        return ids if return_tensors is None else as_return_tensors([ids], return_tensors)

    def tokenize(self, text: str, add_special_tokens: bool = False) -> list[str]:
        """Vocabulary entries of ``text`` ('ĠParis'), without special tokens unless asked."""
        return self._encode([text], add_special_tokens)["tokens"][0]

    def decode(self, token_ids: Any, skip_special_tokens: bool = False, **ignored: Any) -> str:
        ids = to_numpy(token_ids).reshape(-1)
        return self._decode([ids], skip_special_tokens)["text"][0]

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False, **ignored: Any) -> list[str]:
        return self._decode([to_numpy(s).reshape(-1) for s in sequences], skip_special_tokens)["text"]

    def convert_ids_to_tokens(self, ids: Any) -> str | list[str]:
        """Vocabulary entries of ids; one id gives one string, as Hugging Face's."""
        array = to_numpy(ids)
        pieces = self._decode([array.reshape(-1)], False)["pieces"][0]
        return pieces[0] if array.ndim == 0 else pieces

    def __len__(self) -> int:
        return self._size

    @property
    def all_special_ids(self) -> list[int]:
        return sorted({int(s["id"]) for s in self._specials.values()})

    def __getattr__(self, name: str) -> Any:
        """Special tokens by Hugging Face's names: ``eos_token``, ``eos_token_id``, ``pad_token_id``…"""
        if name.endswith("_token_id") and name.removesuffix("_id") in _SPECIAL_NAMES:
            found = self._specials.get(name.removesuffix("_id"))
            return None if found is None else int(found["id"])
        if name in _SPECIAL_NAMES:
            found = self._specials.get(name)
            return None if found is None else found["token"]
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"RemoteTokenizer({self.name_or_path!r}, served by the daemon)"

    # -- requests ---------------------------------------------------------------------------------

    def _encode(self, texts: list[str], add_special_tokens: bool) -> dict[str, list[Any]]:
        merged: dict[str, list[Any]] = {"input_ids": [], "tokens": []}
        for start in range(0, len(texts), BATCH):
            reply = self._model.encode_tokens(texts[start:start + BATCH], add_special_tokens)
            merged["input_ids"] += [np.asarray(r).astype(int).tolist() for r in reply["input_ids"]]
            merged["tokens"] += reply["tokens"]
        return merged

    def _decode(self, rows: list[np.ndarray], skip_special_tokens: bool) -> dict[str, list[Any]]:
        merged: dict[str, list[Any]] = {"text": [], "pieces": [], "token_texts": []}
        for start in range(0, len(rows), BATCH):
            reply = self._model.decode_tokens([r.astype(int).tolist() for r in rows[start:start + BATCH]],
                                              skip_special_tokens)
            for key in merged:
                merged[key] += reply[key]
        return merged

    def _pad(self, rows: list[list[int]], masks: list[list[int]]) -> tuple[list[list[int]], list[list[int]]]:
        pad = self.pad_token_id
        if pad is None:
            raise ValueError("this tokenizer has no pad token, so it cannot pad")
        width = max(len(r) for r in rows)
        return ([r + [pad] * (width - len(r)) for r in rows], [m + [0] * (width - len(m)) for m in masks])


_SPECIAL_NAMES = frozenset({"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                            "mask_token"})
