"""The logit lens's one matrix product, side by side: the model's own ``nn.Linear`` (BLAS) against
``analysis/projection.py`` (oneDNN on a CPU), on the same layer states, in one process.

Usage: .venv/bin/python benchmarks/lens_projection.py [--model smollm2-135m] [--tokens 19] [--repeats 30]
       [--threads 2]

Prints milliseconds (p50) per projection of 1 row, one position through every layer (what a new
rankings_watch position costs) and a whole run, the ratio, the largest difference between the two
kernels' logits, and how far the watched ranks differ (near-ties may swap sides between two fp32 kernels).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecco_daemon.analysis import service  # noqa: E402
from ecco_daemon.analysis.options import AnalysisOptions  # noqa: E402
from ecco_daemon.analysis.projection import project  # noqa: E402
from ecco_daemon.analysis.scores import rank_of  # noqa: E402
from ecco_daemon.models import load_model  # noqa: E402

TEXT = ("The capital of France is Paris. It lies on the Seine, and its museums hold paintings from every "
        "century. Marie Curie worked there on radioactivity, and London is a short train ride away. ") * 4


def p50_ms(call: Callable[[], object], repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=19)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_model(args.model, progress=False)
    ids = lm.tokenizer(TEXT).input_ids[: args.tokens]
    run = service.analyze(lm.model, lm.tokenizer, ids, AnalysisOptions(activations=False))
    arch = run.arch
    linear = arch.unembedding
    with torch.no_grad():
        normed = arch.final_norm(torch.from_numpy(np.ascontiguousarray(run.hidden)))  # (L, R, H)
        cases = {"1 row": normed[-1, -1:], f"1 position, {normed.shape[0]} layers": normed[:, -1],
                 f"whole run, {normed.shape[0] * normed.shape[1]} rows": normed.reshape(-1, normed.shape[-1])}
        print(f"{'projection':<34}{'nn.Linear ms':>14}{'project ms':>12}{'ratio':>8}{'max |diff|':>12}")
        for name, rows in cases.items():
            blas = p50_ms(lambda rows=rows: linear(rows), args.repeats)
            ours = p50_ms(lambda rows=rows: project(linear, rows), args.repeats)
            diff = float((linear(rows) - project(linear, rows)).abs().max())
            print(f"{name:<34}{blas:>14.2f}{ours:>12.2f}{blas / ours:>8.2f}{diff:>12.2e}")
        rows = normed[:, -1]
        watch = torch.as_tensor(lm.tokenizer(" Paris London the").input_ids)[None].expand(rows.shape[0], -1)
        blas_ranks, our_ranks = rank_of(linear(rows), watch), rank_of(project(linear, rows), watch)
        differ = int((blas_ranks != our_ranks).sum())
        gap = int((blas_ranks - our_ranks).abs().max())
        # Two fp32 kernels sum in different orders: a logit within ~1e-4 of the watched one may swap sides.
        print(f"\nwatched ranks at the last position, every layer: {blas_ranks.numel() - differ} of "
              f"{blas_ranks.numel()} equal between the kernels, largest difference {gap}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
