"""View data for the renderer tests, produced by the daemon's own analyses on a real model.

Why: the renderer must be checked on what the analyses produce, not on invented numbers. One
``run_analysis`` (teacher-forced pass: scores, logit-lens states, rankings, MLP activations,
attention) plus ``attribute`` for the generated tokens give everything; the functions below turn
those numpy results into the JSON of protocol/VIEWS.md, as the client's Output objects do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ecco_daemon.analysis import logit_lens
from ecco_daemon.analysis.architecture import inspect_architecture
from ecco_daemon.analysis.attribution import attribute
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.run import AnalysisRun, run_analysis
from ecco_daemon.analysis.sequence import causal_sequence

PROMPT = "The capital of France is"
CONTINUATION = " Paris. The capital of Germany is Berlin."
TOP_K = 5


def token_dicts(tokenizer, ids: np.ndarray, n_input: int) -> list[dict[str, Any]]:
    """Tokens with their decoded text, input flag and word starts (from the tokenizer's own pieces)."""
    pieces = tokenizer.convert_ids_to_tokens([int(i) for i in ids])
    specials = set(tokenizer.all_special_ids)
    out = []
    for i, (token_id, piece) in enumerate(zip(ids, pieces, strict=True)):
        special = int(token_id) in specials
        text = tokenizer.decode([int(token_id)])
        starts = piece.startswith(("Ġ", "Ċ", "▁")) or text[:1].isspace()
        out.append(
            {
                "text": text,
                "id": int(token_id),
                "is_input": i < n_input,
                "word_start": i == 0 or special or starts or bool(out and out[-1]["special"]),
                "special": special,
            }
        )
    return out


class ViewBuilder:
    """Runs the analyses once for prompt + continuation and builds each view's data from the run."""

    def __init__(self, model, tokenizer, prompt: str = PROMPT, continuation: str = CONTINUATION):
        self.model, self.tokenizer = model, tokenizer
        self.arch = inspect_architecture(model)
        prompt_ids = tokenizer(prompt)["input_ids"]
        continuation_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        self.ids = np.array(prompt_ids + continuation_ids, dtype=np.int64)
        self.n_input = len(prompt_ids)
        self.tokens = token_dicts(tokenizer, self.ids, self.n_input)
        attention = getattr(model.config, "_attn_implementation", None) == "eager"
        self.run: AnalysisRun = run_analysis(
            model, self.arch, tokenizer, causal_sequence(self.ids, 1), AnalysisOptions(topk=TOP_K, attention=attention)
        )

    def _decode(self, token_id: int) -> str:
        return self.tokenizer.decode([int(token_id)])

    def probability(self) -> dict[str, Any]:
        s = self.run.scores
        T = len(self.ids)
        probs: list[float | None] = [None] * T
        top: list[list[dict[str, Any]] | None] = [None] * T
        ranks: list[int | None] = [None] * T
        entropy: list[float | None] = [None] * T
        for n, pos in enumerate(s.positions):
            probs[pos] = float(s.probs[n])
            ranks[pos] = int(s.ranks[n])
            entropy[pos] = float(s.entropy[n])
            top[pos] = [
                {"text": self._decode(i), "id": int(i), "prob": float(p)}
                for i, p in zip(s.topk_ids[n], s.topk_probs[n], strict=True)
            ]
        return {"tokens": self.tokens, "probs": probs, "top": top, "ranks": ranks, "entropy": entropy}

    def layer_predictions(self) -> dict[str, Any]:
        T = len(self.ids)
        positions = []
        for pos in range(self.n_input, T + 1):  # every generated token, and the next one after the text
            lp = self.run.layer_predictions(pos, topk=TOP_K)
            row = self.run.seq.prediction_row(pos)
            lens_probs = torch.softmax(logit_lens.lens_logits(self.arch, self.run.hidden[:, row]), -1)  # (L, V)
            layers = []
            for li in range(len(lp.layers)):
                entry: dict[str, Any] = {
                    "top": [
                        {"text": self._decode(i), "id": int(i), "prob": float(p), "rank": r + 1}
                        for r, (i, p) in enumerate(zip(lp.token_ids[li], lp.probs[li], strict=True))
                    ]
                }
                if pos < T:
                    actual = int(self.ids[pos])
                    rank = int(self.run.rankings[li, list(self.run.seq.target_positions).index(pos)])
                    entry["target"] = {
                        "text": self._decode(actual),
                        "id": actual,
                        "prob": float(lens_probs[li, actual]),
                        "rank": rank,
                    }
                layers.append(entry)
            positions.append({"position": pos, "layers": layers})
        return {
            "tokens": self.tokens,
            "layer_labels": [f"Layer {i}" for i in range(self.arch.n_layers)],
            "positions": positions,
            "selected": self.n_input,
        }

    def rankings(self) -> dict[str, Any]:
        targets = list(self.run.seq.target_positions)
        columns = [n for n, pos in enumerate(targets) if pos >= self.n_input]
        return {
            "tokens": self.tokens,
            "targets": [int(targets[n]) for n in columns],
            "ranks": self.run.rankings[:, columns],
            "vocab_size": self.arch.vocab_size,
        }

    def rankings_watch(self, words: tuple[str, ...] = (" Paris", " Berlin", " the", " Rome")) -> dict[str, Any]:
        watch_ids = [self.tokenizer(w, add_special_tokens=False)["input_ids"][-1] for w in words]
        position = self.n_input
        return {
            "tokens": self.tokens,
            "position": position,
            "watch": [{"text": self._decode(w), "id": int(w)} for w in watch_ids],
            "ranks": self.run.rankings_watch(watch_ids, position),
            "vocab_size": self.arch.vocab_size,
        }

    def saliency(self) -> dict[str, Any]:
        seq = causal_sequence(self.ids, first_target=self.n_input)
        methods = []
        for name, label, options in (
            ("integrated_gradients", "Integrated gradients", AnalysisOptions(steps=8)),
            ("grad_x_input", "Gradient × input", AnalysisOptions()),
        ):
            result = attribute(self.model, self.arch, seq, name, options)
            methods.append({"name": name, "label": label, "targets": result.target_positions, "values": result.values})
        foil = self.tokenizer(" Berlin", add_special_tokens=False)["input_ids"][-1]
        contrast = attribute(self.model, self.arch, seq, "contrastive", AnalysisOptions(foils=foil))
        methods.append(
            {
                "name": "contrastive",
                "targets": contrast.target_positions,
                "values": contrast.values,
                "foils": [{"text": self._decode(f), "id": int(f)} for f in contrast.foils],
            }
        )
        return {"tokens": self.tokens, "methods": methods}

    def nmf(self, k: int = 3, alternatives: tuple[int, ...] = (2, 4)) -> dict[str, Any]:
        result = self.run.nmf(k)
        return {
            "tokens": self.tokens,
            "k": result.n_components,
            "factors": result.factors,
            "from_layer": int(result.layers[0]),
            "to_layer": int(result.layers[-1]),
            "alternatives": [{"k": n, "factors": self.run.nmf(n).factors} for n in alternatives],
            "k_range": [1, 8],
        }

    def attention(self) -> dict[str, Any]:
        assert self.run.attention is not None, "load the model with attn_implementation='eager'"
        weights = self.run.attention["self"]  # (L, H, T, T)
        return {
            "tokens": self.tokens,
            "layers": list(range(weights.shape[0])),
            "heads": list(range(weights.shape[1])),
            "attention": weights,
        }

    def all_views(self) -> dict[str, dict[str, Any]]:
        """Every view's data, plus "nmf_k5": the NMF with another factor count, as a live host would
        answer a request-nmf event."""
        views = {
            "tokens": {"tokens": self.tokens},
            "probability": self.probability(),
            "saliency": self.saliency(),
            "layer_predictions": self.layer_predictions(),
            "rankings": self.rankings(),
            "rankings_watch": self.rankings_watch(),
            "nmf": self.nmf(),
            "nmf_k5": self.nmf(5, alternatives=()),
        }
        if self.run.attention is not None:
            views["attention"] = self.attention()
        return views
