"""Text to the token sequence the analyses take, tokenized as the daemon tokenizes a request.

Why: the daemon's analyses start from token ids (``sequence.build_sequence``); tests start from text.
"""

from __future__ import annotations

from typing import Any

from ecco_daemon.analysis.architecture import Architecture
from ecco_daemon.analysis.sequence import TokenSequence, build_sequence
from ecco_daemon.models.tokens import encode_prompt


def text_sequence(arch: Architecture, tokenizer: Any, text: str, target: str | None = None) -> TokenSequence:
    """causal: every token after the first is scored; masked: the mask tokens; encoder-decoder: ``target``."""
    target_ids = encode_prompt(tokenizer, target) if target is not None else None
    return build_sequence(arch, tokenizer, encode_prompt(tokenizer, text), target_ids=target_ids)
