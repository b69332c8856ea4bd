"""What a generation or analysis returns: Ecco's Output, holding numpy arrays from the daemon."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Output:
    model: str
    token_ids: np.ndarray  # (T,) every token: input, then generated
    tokens: list[str]  # (T,) the text each token adds
    n_input_tokens: int
    probabilities: np.ndarray  # (T - n_input_tokens,) probability of each generated token
    alternatives: dict[str, Any]  # ids (N, k), probs (N, k), tokens: N lists of k strings
    text: str
    generated_text: str
    stop_reason: str
    result_id: str | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    client: Any = field(repr=False, default=None)

    @classmethod
    def from_result(cls, result: dict[str, Any], client: Any = None) -> Output:
        return cls(
            model=result["model"],
            token_ids=np.asarray(result["token_ids"]),
            tokens=list(result["tokens"]),
            n_input_tokens=int(result["n_input_tokens"]),
            probabilities=np.asarray(result["probabilities"]),
            alternatives=result.get("alternatives", {}),
            text=result.get("text", ""),
            generated_text=result.get("generated_text", ""),
            stop_reason=result.get("stop_reason", ""),
            result_id=result.get("result_id"),
            raw=result,
            client=client,
        )

    @property
    def generated_tokens(self) -> list[str]:
        return self.tokens[self.n_input_tokens:]

    def top_alternatives(self, step: int) -> list[tuple[str, float]]:
        """The k most likely tokens at one generation step, with their probabilities."""
        tokens = self.alternatives.get("tokens", [])[step]
        probs = np.asarray(self.alternatives.get("probs"))[step]
        return [(t, float(p)) for t, p in zip(tokens, probs, strict=True)]

    def __str__(self) -> str:
        return self.text
