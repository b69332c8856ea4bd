"""View latency on a stored result, from the Python client: what the panel and notebooks wait for when
someone picks another position, watched token or factor count.

Usage: .venv/bin/python benchmarks/view_latency.py [--model smollm2-135m] [--lengths 19,50,100]
       [--repeats 30] [--nmf-repeats 10] [--threads 2] [--connection-file FILE]

For each text length (in tokens) it analyses one text (grad×input, so saliency has data), then asks each
view many times through the public client API, cycling the position so no answer is a repeat of the one
before (positions in a shuffled order, each once before any repeats). Prints, per view and length, the
first call (it may fill a per-run cache), then p50 and p99 of the rest, in milliseconds; and the table in
Markdown for the issue. NMF asks the same factor count each time and is computed anew each time.
``layer predictions`` is the notebook's call (its first call fetches every position, the output keeps
them); ``layer predictions, one position`` is what the editor panel asks the daemon for each pick.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ecco_client  # noqa: E402
from tests.daemon_process import DaemonProcess  # noqa: E402

PARAGRAPH = ("The capital of France is Paris. It lies on the Seine, and its museums hold paintings from every "
             "century. Marie Curie worked there on radioactivity, and London is a short train ride away. ")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(call: Callable[[int], Any], repeats: int) -> list[float]:
    """Milliseconds of ``call(i)`` for i = 0..repeats-1 (the first call included, first)."""
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - start) * 1000)
    return times


def measure_length(client: Any, model: str | None, n_tokens: int, repeats: int, nmf_repeats: int) -> dict:
    lm = client.model(model)
    ids = lm.encode_tokens(PARAGRAPH * (1 + n_tokens // 30))["input_ids"][0][:n_tokens]
    start = time.perf_counter()
    out = lm.analyze([int(i) for i in ids], attribution=["grad_x_input"], progress=False)
    analysis_s = time.perf_counter() - start
    positions = list(range(1, n_tokens))
    random.Random(0).shuffle(positions)  # every position once before any repeats: no answer is a cached one
    layer_order = list(range(int(out.analysis["n_layers"])))
    random.Random(1).shuffle(layer_order)
    views: dict[str, Callable[[int], Any]] = {
        "saliency": lambda i: out.primary_attributions(),
        # The notebook's call: the first fetches every position, later ones are looked up in the output.
        "layer predictions": lambda i: out.layer_predictions(position=positions[i % len(positions)]),
        # The editor panel's ask: one position per request, answered by the daemon each time.
        "layer predictions, one position": lambda i: client.call("view", {
            "result_id": out.result_id, "view": "layer_predictions",
            "params": {"position": positions[i % len(positions)], "topk": 10}}),
        "rankings watch": lambda i: out.rankings_watch([" Paris", " London"], position=positions[i % len(positions)]),
        "run_nmf(n_components=4)": lambda i: out.run_nmf(n_components=4),
        # The panel's layer picker: one layer per ask, all heads; the first ask runs the recording forward.
        "attention, another layer each call": lambda i: out.attention(layer=layer_order[i % len(layer_order)]),
    }
    rows = {}
    for name, call in views.items():
        times = timed(call, (nmf_repeats if "nmf" in name else repeats) + 1)
        rest = times[1:]
        rows[name] = {"first": times[0], "p50": statistics.median(rest), "p99": percentile(rest, 0.99)}
    return {"tokens": len(ids), "analysis_s": analysis_s, "views": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--lengths", default="19,50,100", help="text lengths in tokens, comma-separated")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--nmf-repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="the daemon's OMP_NUM_THREADS")
    parser.add_argument("--connection-file", type=Path, default=None, help="use this running daemon instead")
    args = parser.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]

    def run(connection_file: Path, model: str | None) -> list[dict]:
        with ecco_client.connect(connection_file=connection_file, timeout=120, progress=False) as client:
            return [measure_length(client, model, n, args.repeats, args.nmf_repeats) for n in lengths]

    if args.connection_file is not None:
        results = run(args.connection_file, None)
    else:
        with tempfile.TemporaryDirectory() as tmp, DaemonProcess(
                Path(tmp), [args.model], env={"OMP_NUM_THREADS": str(args.threads)}) as daemon:
            results = run(daemon.connection_file, None)

    print(f"{'view':<34}{'tokens':>7}{'first ms':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for result in results:
        for name, row in result["views"].items():
            print(f"{name:<34}{result['tokens']:>7}{row['first']:>10.1f}{row['p50']:>9.1f}{row['p99']:>9.1f}")
    print("\n| view | tokens | first ms | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- |")
    for result in results:
        for name, row in result["views"].items():
            print(f"| {name} | {result['tokens']} | {row['first']:.0f} | {row['p50']:.0f} | {row['p99']:.0f} |")
    print("\n" + ", ".join(f"{r['tokens']} tokens analysed in {r['analysis_s']:.1f}s" for r in results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
