"""Tokenizing and decoding with a loaded model's tokenizer, for clients that hold no tokenizer.

Why: a thin client (Ecco's ``lm.tokenizer``, the editor) needs the exact ids the daemon's model uses
without downloading or loading the tokenizer itself. Both operations are control operations: a fast
tokenizer answers a bounded request in milliseconds, so it never waits behind model work.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ecco_protocol.errors import ErrorCode

from ecco_daemon.models.tokens import decode_ids, encode_texts, token_texts, vocabulary_pieces
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.server.errors import OperationError, bad_request
from ecco_daemon.server.job import Job
from ecco_daemon.server.params import ParamReader
from ecco_daemon.server.registry import OPERATIONS

MAX_SEQUENCES = 64  # texts or id rows in one request
MAX_CHARACTERS = 200_000  # of all texts together: tokenizing them stays in the milliseconds
MAX_IDS = 100_000  # of all id rows together


@OPERATIONS.control("tokens.encode")
def encode(ctx: RuntimeContext, job: Job, params: dict[str, Any]) -> dict[str, Any]:
    read = ParamReader(params, ["model", "text", "add_special_tokens"])
    texts = _bounded(read.str_list("text"), "texts", "characters", MAX_CHARACTERS)
    add_special_tokens = read.bool("add_special_tokens", True)
    lm = ctx.models.get(read.str("model", None, max_length=4096))
    rows = encode_texts(lm.tokenizer, texts, add_special_tokens)
    return {"model": lm.name, "input_ids": [np.asarray(ids, dtype=np.int64) for ids in rows],
            "tokens": [vocabulary_pieces(lm.tokenizer, ids) for ids in rows]}


@OPERATIONS.control("tokens.decode")
def decode(ctx: RuntimeContext, job: Job, params: dict[str, Any]) -> dict[str, Any]:
    read = ParamReader(params, ["model", "ids", "skip_special_tokens"])
    rows = _bounded(read.int_rows("ids"), "id rows", "ids", MAX_IDS)
    skip = read.bool("skip_special_tokens", False)
    lm = ctx.models.get(read.str("model", None, max_length=4096))
    size = len(lm.tokenizer)
    if any(i < 0 or i >= size for row in rows for i in row):
        raise bad_request(f"token ids must lie in [0, {size}) for {lm.name}", field="ids")
    return {"model": lm.name, "text": [decode_ids(lm.tokenizer, r, skip) for r in rows],
            "pieces": [vocabulary_pieces(lm.tokenizer, r) for r in rows],
            "token_texts": [token_texts(lm.tokenizer, r) for r in rows]}


def _bounded(rows: list[Any], what: str, unit: str, total_limit: int) -> list[Any]:
    """``rows`` when within the limits: at most MAX_SEQUENCES of them, ``total_limit`` units in all."""
    for count, name, limit in ((len(rows), what, MAX_SEQUENCES), (sum(len(r) for r in rows), unit, total_limit)):
        if count > limit:
            raise OperationError(ErrorCode.TOO_LARGE, f"{count} {name} exceed the limit of {limit} per request")
    return rows
