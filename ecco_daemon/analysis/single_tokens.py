"""Token texts where one token is meant (a watched token, a foil), as the ids the model uses.

Why one place: rankings_watch and contrastive foils both take "a token", as an id or as its text, and
both must refuse a text that is several tokens with the same clear words, naming the pieces, instead of
silently using its first piece.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ecco_daemon.analysis.errors import InvalidArgument
from ecco_daemon.models.tokens import token_texts


def single_token_ids(tokenizer: Any, entries: Sequence[int | str], what: str, why: str) -> list[int]:
    """One token id per entry (ids pass through); ``what`` names an entry, ``why`` says why one token."""
    ids = []
    for item in entries:
        if isinstance(item, str):
            encoded = tokenizer(item, add_special_tokens=False).input_ids
            if len(encoded) != 1:
                raise InvalidArgument(_not_one_token(tokenizer, item, encoded, what, why))
            ids.append(int(encoded[0]))
        else:
            ids.append(int(item))
    return ids


def _not_one_token(tokenizer: Any, item: str, encoded: Sequence[int], what: str, why: str) -> str:
    shown = repr(item[:40] + ("…" if len(item) > 40 else ""))
    if not encoded:
        return f"{what} {shown} has no tokens"
    pieces = ", ".join(repr(t) for t in token_texts(tokenizer, list(encoded[:6])))
    more = f" and {len(encoded) - 6} more" if len(encoded) > 6 else ""
    return f"{what} {shown} is {len(encoded)} tokens ({pieces}{more}); {why}"
