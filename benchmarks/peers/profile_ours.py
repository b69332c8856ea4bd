"""Where our time goes on this CPU, and what a causal, row-only schedule would save.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/peers/profile_ours.py [--n 32] [--ig-steps 10]
Prints CPU seconds (one thread, so that other work on the machine moves the numbers little) for each
stage of a daemon generate-with-attribution request on SmolLM2 (generation, the captured forward,
rankings, the attribution), then the same attributions computed by ``causal_blocks`` below, a prototype
that (1) runs each block of consecutive output tokens over the prefix it needs only (a causal model's
token cannot depend on later ones), (2) projects only the target rows through the unembedding instead of
every row, and (3) takes one backward per target from the block's shared forward. Its Spearman agreement
with the current functions is printed too (it must be 1.0: same arithmetic, less of it).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ecco_daemon.analysis import logit_lens  # noqa: E402
from ecco_daemon.analysis.attribution import AttributionOptions, attribute, ig_steps  # noqa: E402
from ecco_daemon.analysis.capture import capture_forward  # noqa: E402
from ecco_daemon.analysis.service import architecture_for, build_sequence  # noqa: E402
from ecco_daemon.generation import SamplingParams, generate  # noqa: E402
from ecco_daemon.models.loader import load_model  # noqa: E402
from ecco_daemon.tokens import encode_prompt  # noqa: E402

PROMPT = "In a quiet village by the sea, an old fisherman"


def cpu(label: str, fn: Callable[[], Any]) -> Any:
    start = time.process_time()
    result = fn()
    print(f"{label:<58} {time.process_time() - start:8.2f} cpu s", flush=True)
    return result


def causal_blocks(
    model: torch.nn.Module, ids: list[int], n_input: int, method: str, steps: int, block: int = 8
) -> np.ndarray:
    """Prototype schedule (probability score, as Ecco): (N, S) normalized attributions."""
    weight = model.get_input_embeddings().weight
    unembed = model.get_output_embeddings().weight  # (V, H)
    embeds = weight[torch.tensor(ids)].detach()  # (S, H)
    n_out = len(ids) - n_input
    out = np.zeros((n_out, len(ids)), np.float32)
    if method == "integrated_gradients":
        points, weights = ig_steps(steps, "gausslegendre")
        alphas = torch.tensor(points, dtype=embeds.dtype)
        step_weights = torch.tensor(weights, dtype=torch.float32)
    for first in range(0, n_out, block):
        last = min(n_out, first + block)
        end = n_input + last - 1  # tokens 0..end-1 explain outputs first..last-1
        prefix = embeds[:end]
        if method == "integrated_gradients":
            inputs = (alphas[:, None, None] * prefix).requires_grad_(True)  # (M, end, H)
        else:
            inputs = prefix.unsqueeze(0).clone().requires_grad_(True)  # (1, end, H)
        with torch.enable_grad():
            hidden = model.model(inputs_embeds=inputs, use_cache=False).last_hidden_state  # (M, end, H)
            rows = torch.arange(n_input + first - 1, n_input + last - 1)
            targets = torch.tensor(ids[n_input + first : n_input + last])
            logits = hidden[:, rows].float() @ unembed.float().T  # (M, C, V): target rows only
            probs = torch.softmax(logits, -1)[:, torch.arange(last - first), targets]  # (M, C)
            for k in range(last - first):
                score = probs[:, k] @ step_weights if method == "integrated_gradients" else probs[0, k]
                (grad,) = torch.autograd.grad(score, inputs, retain_graph=k < last - first - 1)
                values = (grad.float().sum(0) * prefix.float()).norm(dim=-1)  # (end,)
                n = first + k
                width = n_input + n
                out[n, :width] = (values[:width] / values[:width].sum()).numpy()
    return out


def agreement(a: np.ndarray, b: np.ndarray, n_input: int) -> str:
    rhos = [spearmanr(a[n, : n_input + n], b[n, : n_input + n]).statistic for n in range(a.shape[0])]
    return f"Spearman min {np.min(rhos):.4f} median {np.median(rhos):.4f}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--ig-steps", type=int, default=10, help="IG steps (time scales about linearly)")
    args = parser.parse_args()
    lm = load_model("smollm2-135m", progress=False)
    ids = encode_prompt(lm.tokenizer, PROMPT)
    generated = cpu(
        f"generate {args.n} tokens (daemon's loop)", lambda: generate(lm, ids, args.n, SamplingParams())
    )
    all_ids = ids + list(generated.generated_ids)
    arch = architecture_for(lm.model)
    seq = build_sequence(arch, lm.tokenizer, all_ids, first_target=len(ids))
    captured = cpu(
        "captured forward (hidden states, activations)",
        lambda: capture_forward(lm.model, arch, seq, activations=True),
    )
    cpu(
        "rankings (logit lens at every layer)",
        lambda: logit_lens.rankings(arch, captured.hidden, seq.target_rows, seq.target_ids),
    )
    for method, steps in (("grad_x_input", 1), ("integrated_gradients", args.ig_steps)):
        label = "grad×input" if steps == 1 else f"IG, {steps} steps"
        current = cpu(
            f"{label}: attribute(), batched (vmap)",
            lambda m=method, s=steps: (
                attribute(lm.model, arch, seq, m, AttributionOptions(score="prob", steps=s)).values
            ),
        )
        proto = cpu(
            f"{label}: causal blocks of 8, target rows only",
            lambda m=method, s=steps: causal_blocks(lm.model, all_ids, len(ids), m, s),
        )
        print(f"{'':<58} {agreement(current[:, : len(all_ids)], proto, len(ids))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
