"""The input checks that every model-running operation makes before its job is queued.

Why one place: "generate" and "analyze" take the same kinds of input (a text or token ids, on one model),
and a request either operation would crash on must be refused the same way by both: a bad token id or an
empty prompt is BAD_REQUEST; too many tokens for the daemon or for the model's positions is TOO_LARGE.
Every token id a request names (input, target, foil) is checked here, before any kernel indexes with it:
on CUDA an out-of-range index is a device-side assert that ends the context for every user, and a
negative one silently wraps to another token.
"""

from __future__ import annotations

from collections.abc import Sequence

from ecco_protocol.errors import ErrorCode

from ecco_daemon.analysis.errors import AnalysisError
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.generation.decoding import position_limit
from ecco_daemon.models.loaded import LoadedModel
from ecco_daemon.models.tokens import encode_prompt
from ecco_daemon.server.errors import OperationError


def prompt_ids(lm: LoadedModel, text: str | None, ids: list[int] | None, what: str) -> list[int]:
    """The given ids, or ``text`` tokenized as the model expects; refused when nothing is left."""
    resolved = ids if ids is not None else encode_prompt(lm.tokenizer, text or "")
    if not resolved:
        raise OperationError(ErrorCode.BAD_REQUEST, f"the {what} is empty after tokenization")
    return resolved


def check_vocabulary(lm: LoadedModel, ids: Sequence[int], what: str) -> None:
    """Every id names a row of the embedding (past it the lookup fails, on CUDA for every user)."""
    vocab = lm.model.get_input_embeddings().num_embeddings
    if any(i < 0 or i >= vocab for i in ids):
        raise OperationError(ErrorCode.BAD_REQUEST, f"{what} must lie in [0, {vocab})")


def check_input_limit(n_tokens: int, limit: int, described: str) -> None:
    """The daemon's own cap on tokens per request (``described`` says how the count was made)."""
    if n_tokens > limit:
        raise OperationError(ErrorCode.TOO_LARGE,
                             f"{described} exceed the limit of {limit} (ecco-daemon serve --max-input-tokens)",
                             {"limit": limit, "flag": "--max-input-tokens"})


def check_positions(lm: LoadedModel, longest: int, described: str) -> None:
    """The model's last position: past it the model fails (on CUDA, for every user), so refuse before running."""
    positions = position_limit(lm)
    if positions is not None and longest > positions:
        raise OperationError(ErrorCode.TOO_LARGE, f"{described} exceed the {positions} positions of {lm.name}")


def check_foils(lm: LoadedModel, options: AnalysisOptions | None, n_tokens: int) -> AnalysisOptions | None:
    """Foils are token ids or one-token texts (one, or one per output token): the texts become ids, every
    id in the vocabulary, and no more than the tokens. Returns the options with ids only."""
    if options is None or not options.foils:
        return options
    try:
        options = options.with_foil_ids(lm.tokenizer)
    except AnalysisError as exc:
        raise OperationError(ErrorCode(exc.code), str(exc), {"field": "foils"}) from None
    foils = [int(f) for f in options.foils or ()]
    if len(foils) > n_tokens:
        raise OperationError(ErrorCode.BAD_REQUEST, f"'foils' has {len(foils)} entries for {n_tokens} tokens; give "
                             "one for every output token, or one for all")
    check_vocabulary(lm, foils, "'foils'")
    return options
