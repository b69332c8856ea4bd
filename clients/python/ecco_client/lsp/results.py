"""Explained selections, kept per document: what hover, diagnostics and recompute read later.

The field names of ``to_json`` are the extension's (clients/vscode/shared/protocol.ts: ExplainResult,
ExplainedToken), so the result goes over LSP as is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lsprotocol import types

from ecco_client.views import Alternative, Analysis

MAX_RESULTS = 32  # explained selections kept, oldest dropped first


@dataclass
class ExplainedToken:
    index: int
    text: str
    range: types.Range | None  # where its text lies in the document (client units); None: not there
    probability: float | None  # P(token | tokens before); None where not scored (the first token)
    rank: int | None
    alternatives: list[Alternative]
    generated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "text": self.text,
            "range": range_json(self.range) if self.range else None,
            "probability": self.probability,
            "rank": self.rank,
            "alternatives": [{"token": a.token, "probability": a.probability} for a in self.alternatives],
            "generated": self.generated,
        }


@dataclass
class Explanation:
    """One explained selection: its tokens, the renderer's view, and the analysis that recompute reads."""

    result_id: str
    uri: str
    range: types.Range
    model: str
    tokens: list[ExplainedToken]
    view: dict[str, Any]  # RenderSpec: {view, data, options}
    analysis: Analysis | None = None  # the daemon's analysis (its result id, token ids…), for recompute

    def to_json(self) -> dict[str, Any]:
        return {
            "resultId": self.result_id,
            "uri": self.uri,
            "range": range_json(self.range),
            "model": self.model,
            "tokens": [t.to_json() for t in self.tokens],
            "view": self.view,
        }

    def token_at(self, position: types.Position) -> ExplainedToken | None:
        """The token whose range holds the position; at a boundary, the one that starts there."""
        touching = None
        for token in self.tokens:
            if token.range is None:
                continue
            if before_or_equal(token.range.start, position) and before(position, token.range.end):
                return token
            if token.range.end == position:
                touching = token
        return touching


def range_json(r: types.Range) -> dict[str, Any]:
    return {
        "start": {"line": r.start.line, "character": r.start.character},
        "end": {"line": r.end.line, "character": r.end.character},
    }


def before(a: types.Position, b: types.Position) -> bool:
    return (a.line, a.character) < (b.line, b.character)


def before_or_equal(a: types.Position, b: types.Position) -> bool:
    return (a.line, a.character) <= (b.line, b.character)


def overlaps(a: types.Range, b: types.Range) -> bool:
    return before(a.start, b.end) and before(b.start, a.end)


class ResultStore:
    """Explanations by id and by document. A newer explanation of an overlapping range replaces older ones."""

    def __init__(self, limit: int = MAX_RESULTS) -> None:
        self.limit = limit
        self._by_id: dict[str, Explanation] = {}

    def add(self, explanation: Explanation) -> list[Explanation]:
        """Stores it; returns the explanations it replaced (same document, overlapping range)."""
        replaced = [
            e
            for e in self.for_document(explanation.uri)
            if overlaps(e.range, explanation.range) or e.range == explanation.range
        ]
        for old in replaced:
            del self._by_id[old.result_id]
        self._by_id[explanation.result_id] = explanation
        while len(self._by_id) > self.limit:
            oldest = next(iter(self._by_id))
            replaced.append(self._by_id.pop(oldest))
        return replaced

    def get(self, result_id: str) -> Explanation | None:
        return self._by_id.get(result_id)

    def for_document(self, uri: str) -> list[Explanation]:
        return [e for e in self._by_id.values() if e.uri == uri]

    def token_at(self, uri: str, position: types.Position) -> tuple[Explanation, ExplainedToken] | None:
        for explanation in reversed(self.for_document(uri)):  # newest first
            token = explanation.token_at(position)
            if token is not None:
                return explanation, token
        return None

    def invalidate(self, uri: str, changed: types.Range | None) -> list[Explanation]:
        """Drops the document's explanations an edit made stale: those ending after the edit's start
        (their token ranges no longer point at their text); every one when the whole text changed."""
        stale = [
            e
            for e in self.for_document(uri)
            if changed is None or not before_or_equal(e.range.end, changed.start)
        ]
        for explanation in stale:
            del self._by_id[explanation.result_id]
        return stale

    def forget_document(self, uri: str) -> None:
        for explanation in self.for_document(uri):
            del self._by_id[explanation.result_id]

    def __iter__(self) -> Iterator[Explanation]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)
