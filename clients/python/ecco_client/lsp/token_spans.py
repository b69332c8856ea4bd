"""Where each token's text lies in the selected text (character offsets), without the tokenizer.

Why: the daemon returns each token as the text it adds; the editor needs ranges. Tokens are matched
in order from a cursor. A token whose text cannot be found there (a special token such as BOS, or one
byte of a character split across byte-level tokens, which decodes alone to U+FFFD) joins a run of
unmatched tokens; when the next token matches, the skipped text between them is given to the first
token of the run and the others get no span, so spans never overlap and together cover the text.
"""

from __future__ import annotations

from collections.abc import Sequence

Span = tuple[int, int]
LOOKAHEAD_PER_SKIPPED = 8  # characters searched ahead per unmatched token (a UTF-8 char is at most 4 bytes)


def _match_at(text: str, token: str, cursor: int, window: int) -> Span | None:
    """The token's text at the cursor, else after whitespace the tokenizer dropped, else within window."""
    if not token or "\ufffd" in token:
        return None
    if text.startswith(token, cursor):
        return cursor, cursor + len(token)
    stripped = token.strip()
    if stripped:
        start = cursor
        while start < len(text) and text[start].isspace():
            start += 1
        if text.startswith(stripped, start):
            return start, start + len(stripped)
    if window > 0:
        for piece in (token, stripped):
            found = text.find(piece, cursor, cursor + window + len(piece)) if piece else -1
            if found >= 0:
                return found, found + len(piece)
    return None


def token_spans(text: str, tokens: Sequence[str], special: Sequence[bool] | None = None) -> list[Span | None]:
    """One span (start, end) per token, or None for a token with no text of its own in ``text``."""
    spans: list[Span | None] = [None] * len(tokens)
    cursor = 0
    skipped: list[int] = []  # unmatched tokens since the last match
    for index, token in enumerate(tokens):
        if special is not None and special[index]:
            continue  # special tokens (BOS, EOS) never stand for text the user wrote
        window = LOOKAHEAD_PER_SKIPPED * len(skipped)
        span = _match_at(text, token, cursor, window)
        if span is None:
            skipped.append(index)
            continue
        if skipped and span[0] > cursor:
            spans[skipped[0]] = (cursor, span[0])
        skipped = []
        spans[index] = span
        cursor = span[1]
    rest_end = len(text.rstrip())
    if skipped and rest_end > cursor:
        spans[skipped[0]] = (cursor, rest_end)
    return spans
