"""Where our time goes on this CPU, stage by stage, in full and in reduced backward precision.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/peers/profile_ours.py [--n 32] [--ig-steps 10]
Prints CPU seconds (one thread, so that other work on the machine moves the numbers little) for each
stage of a daemon generate-with-attribution request on SmolLM2 (generation, the captured forward,
rankings, the attribution), and the attributions once more with ``backward_precision="reduced"`` with
their Spearman agreement to the full-precision ones (the peers agree with full precision to 1e-7).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ecco_daemon.analysis import logit_lens  # noqa: E402
from ecco_daemon.analysis.attribution import attribute  # noqa: E402
from ecco_daemon.analysis.capture import capture_forward  # noqa: E402
from ecco_daemon.analysis.options import AnalysisOptions  # noqa: E402
from ecco_daemon.analysis.sequence import build_sequence  # noqa: E402
from ecco_daemon.analysis.service import architecture_for  # noqa: E402
from ecco_daemon.generation.decoding import SamplingParams, generate  # noqa: E402
from ecco_daemon.models.loader import load_model  # noqa: E402
from ecco_daemon.models.tokens import encode_prompt  # noqa: E402

PROMPT = "In a quiet village by the sea, an old fisherman"


def cpu(label: str, fn: Callable[[], Any]) -> Any:
    start = time.process_time()
    result = fn()
    print(f"{label:<58} {time.process_time() - start:8.2f} cpu s", flush=True)
    return result


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
            f"{label}: attribute(), causal blocks",
            lambda m=method, s=steps: (
                attribute(lm.model, arch, seq, m, AnalysisOptions(score="prob", steps=s)).values
            ),
        )
        reduced = cpu(
            f"{label}: attribute(), reduced backward precision",
            lambda m=method, s=steps: (
                attribute(
                    lm.model, arch, seq, m, AnalysisOptions(score="prob", steps=s, backward_precision="reduced")
                ).values
            ),
        )
        print(f"{'':<58} {agreement(current, reduced, len(ids))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
