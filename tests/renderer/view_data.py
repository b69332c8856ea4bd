"""View data for the renderer tests, computed from a real (tiny, random) model's forward pass.

Why: the renderer must be checked on what the daemon's analyses produce, not on invented numbers. The
attributions come from ecco_daemon.analysis.attribution; the other views come from one teacher-forced
forward pass through the same architecture inspection (logit lens = final norm + unembedding per layer,
MLP activations captured with scoped hooks). The dicts follow protocol/VIEWS.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import NMF
from transformers import AutoModelForCausalLM, AutoTokenizer

from ecco_daemon.analysis.architecture import capture_io, inspect_architecture
from ecco_daemon.analysis.attribution import AttributionOptions, attribute
from ecco_daemon.analysis.sequence import causal_sequence

PROMPT = "The capital of France is"
CONTINUATION = " Paris. The capital of Germany is Berlin."
TOP_K = 5


@dataclass
class RunData:
    """Everything one forward pass gives, as numpy arrays."""

    ids: np.ndarray  # (T,)
    n_input: int
    tokens: list[dict[str, Any]]
    probs: np.ndarray  # (T, V) softmax of the row that predicts each next token
    layer_logits: np.ndarray  # (L, T, V) logit lens per layer
    attentions: np.ndarray  # (L, H, T, T)
    mlp: np.ndarray  # (L, T, I) MLP activations
    vocab_size: int


def token_dicts(tokenizer, ids: np.ndarray, n_input: int) -> list[dict[str, Any]]:
    pieces = tokenizer.convert_ids_to_tokens([int(i) for i in ids])
    specials = set(tokenizer.all_special_ids)
    out = []
    for i, (token_id, piece) in enumerate(zip(ids, pieces, strict=True)):
        text = tokenizer.decode([int(token_id)])
        out.append(
            {
                "text": text,
                "id": int(token_id),
                "is_input": i < n_input,
                "word_start": i == 0 or piece.startswith("Ġ") or piece.startswith("Ċ") or int(token_id) in specials,
                "special": int(token_id) in specials,
            }
        )
    return out


def forward(model_dir: Path) -> tuple[RunData, Any, Any, Any]:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    arch = inspect_architecture(model)
    prompt_ids = tokenizer(PROMPT)["input_ids"]
    ids = np.array(prompt_ids + tokenizer(CONTINUATION)["input_ids"], dtype=np.int64)
    n_input = len(prompt_ids)
    modules_out = dict(zip(arch.decoder.layer_paths, arch.decoder.layers, strict=True))
    modules_mlp = dict(zip(arch.decoder.mlp_down_paths, arch.decoder.mlp_down, strict=True))
    with torch.no_grad(), capture_io(modules_out, inputs=False) as states, capture_io(modules_mlp, inputs=True) as acts:
        out = model(torch.tensor(ids)[None], output_attentions=True)
        layer_logits = torch.stack([arch.lens_logits(states[p][0]) for p in arch.decoder.layer_paths])  # (L, T, V)
    run = RunData(
        ids=ids,
        n_input=n_input,
        tokens=token_dicts(tokenizer, ids, n_input),
        probs=torch.softmax(out.logits[0], -1).numpy(),
        layer_logits=layer_logits.numpy(),
        attentions=torch.stack([a[0] for a in out.attentions]).numpy(),
        mlp=torch.stack([acts[p][0] for p in arch.decoder.mlp_down_paths]).numpy(),
        vocab_size=int(out.logits.shape[-1]),
    )
    return run, model, arch, tokenizer


def probability_view(run: RunData, tokenizer) -> dict[str, Any]:
    T = len(run.ids)
    probs: list[float | None] = [None]
    top: list[list[dict[str, Any]] | None] = [None]
    ranks: list[int | None] = [None]
    entropy: list[float | None] = [None]
    for i in range(1, T):
        dist = run.probs[i - 1]  # (V,)
        p = float(dist[run.ids[i]])
        probs.append(p)
        order = np.argsort(-dist)
        top.append([{"text": tokenizer.decode([int(j)]), "id": int(j), "prob": float(dist[j])} for j in order[:TOP_K]])
        ranks.append(int(np.flatnonzero(order == run.ids[i])[0]) + 1)
        entropy.append(float(-(dist * np.log(np.clip(dist, 1e-30, None))).sum()))
    return {"tokens": run.tokens, "probs": probs, "top": top, "ranks": ranks, "entropy": entropy}


def _ranks(logits: np.ndarray, token_id: int) -> int:
    return int((logits > logits[token_id]).sum()) + 1


def layer_predictions_view(run: RunData, tokenizer) -> dict[str, Any]:
    L, T, _ = run.layer_logits.shape
    lens_probs = torch.softmax(torch.from_numpy(run.layer_logits), -1).numpy()  # (L, T, V)
    positions = []
    for pos in range(run.n_input - 1, T - 1):  # the prompt's last token and every generated one but the last
        layers = []
        for layer in range(L):
            dist = lens_probs[layer, pos]
            order = np.argsort(-dist)[:TOP_K]
            nxt = int(run.ids[pos + 1])
            layers.append(
                {
                    "top": [
                        {"text": tokenizer.decode([int(j)]), "id": int(j), "prob": float(dist[j]), "rank": r + 1}
                        for r, j in enumerate(order)
                    ],
                    "target": {
                        "text": tokenizer.decode([nxt]),
                        "id": nxt,
                        "prob": float(dist[nxt]),
                        "rank": _ranks(run.layer_logits[layer, pos], nxt),
                    },
                }
            )
        positions.append({"position": pos, "layers": layers})
    return {
        "tokens": run.tokens,
        "layer_labels": [f"Layer {i + 1}" for i in range(L)],
        "positions": positions,
        "selected": run.n_input - 1,
    }


def rankings_view(run: RunData) -> dict[str, Any]:
    L = run.layer_logits.shape[0]
    targets = list(range(run.n_input, len(run.ids)))
    ranks = [[_ranks(run.layer_logits[layer, t - 1], int(run.ids[t])) for t in targets] for layer in range(L)]
    lens_probs = torch.softmax(torch.from_numpy(run.layer_logits), -1).numpy()
    probs = [[float(lens_probs[layer, t - 1, run.ids[t]]) for t in targets] for layer in range(L)]
    return {"tokens": run.tokens, "targets": targets, "ranks": ranks, "probs": probs, "vocab_size": run.vocab_size}


def rankings_watch_view(run: RunData, tokenizer) -> dict[str, Any]:
    position = run.n_input - 1
    watch_ids = [tokenizer(w)["input_ids"][-1] for w in (" Paris", " Berlin", " the", " Rome")]
    L = run.layer_logits.shape[0]
    ranks = [[_ranks(run.layer_logits[layer, position], w) for w in watch_ids] for layer in range(L)]
    return {
        "tokens": run.tokens,
        "position": position,
        "watch": [{"text": tokenizer.decode([w]), "id": int(w)} for w in watch_ids],
        "ranks": ranks,
        "vocab_size": run.vocab_size,
    }


def saliency_view(run: RunData, model, arch, tokenizer) -> dict[str, Any]:
    seq = causal_sequence(run.ids, first_target=run.n_input)
    methods = []
    for name, label, options in (
        ("integrated_gradients", "Integrated gradients", AttributionOptions(steps=8)),
        ("grad_x_input", "Gradient × input", AttributionOptions()),
    ):
        result = attribute(model, arch, seq, name, options)
        methods.append({"name": name, "label": label, "targets": result.target_positions, "values": result.values})
    foil = tokenizer(" Berlin")["input_ids"][-1]
    contrast = attribute(model, arch, seq, "contrastive", AttributionOptions(foil_ids=foil))
    methods.append(
        {
            "name": "contrastive",
            "targets": contrast.target_positions,
            "values": contrast.values,
            "foils": [{"text": tokenizer.decode([int(f)]), "id": int(f)} for f in contrast.foil_ids],
        }
    )
    return {"tokens": run.tokens, "methods": methods}


def nmf_view(run: RunData, k: int = 3, alternatives: tuple[int, ...] = (2, 4)) -> dict[str, Any]:
    acts = np.maximum(run.mlp, 0)  # (L, T, I); NMF needs non-negative input, as in Ecco
    matrix = acts.transpose(1, 0, 2).reshape(acts.shape[1], -1)  # (T, L*I)

    def factors(n: int) -> np.ndarray:
        model = NMF(n_components=n, init="nndsvda", max_iter=400, random_state=0)
        return model.fit_transform(matrix).T  # (n, T)

    return {
        "tokens": run.tokens,
        "k": k,
        "factors": factors(k),
        "from_layer": 0,
        "to_layer": acts.shape[0] - 1,
        "alternatives": [{"k": n, "factors": factors(n)} for n in alternatives],
        "k_range": [1, 8],
    }


def attention_view(run: RunData) -> dict[str, Any]:
    L, H = run.attentions.shape[:2]
    return {"tokens": run.tokens, "layers": list(range(L)), "heads": list(range(H)), "attention": run.attentions}


def all_views(model_dir: Path) -> dict[str, dict[str, Any]]:
    """Every view's data for one run of the tiny model on the fixed text, plus "nmf_k5": the NMF with
    another factor count, as a live host would answer a request-nmf event."""
    run, model, arch, tokenizer = forward(model_dir)
    return {
        "tokens": {"tokens": run.tokens},
        "probability": probability_view(run, tokenizer),
        "saliency": saliency_view(run, model, arch, tokenizer),
        "layer_predictions": layer_predictions_view(run, tokenizer),
        "rankings": rankings_view(run),
        "rankings_watch": rankings_watch_view(run, tokenizer),
        "nmf": nmf_view(run),
        "attention": attention_view(run),
        "nmf_k5": nmf_view(run, k=5, alternatives=()),
    }
