"""One command, every tool side by side: this project (warm daemon), Ecco 0.1.2 and inseq 0.7.1.

Usage: .venv/bin/python benchmarks/peers/run.py [--quick] [--tools ours,ecco,inseq] [--ns 8 32 64]
Same machine, same model (SmolLM2-135M-Instruct from the daemon's cache), same prompt, same thread count,
greedy decoding. Each tool is a process that loads the model once; cells run interleaved (every tool runs
repeat k of a cell before any runs repeat k+1, in rotating order) so that load from other work on the
machine falls on all tools alike. Times are end to end: the call that generates N tokens and returns
their attributions. Prints the table of medians and ratios and the agreement (Spearman per output token),
and writes JSON and Markdown to artifacts/benchmarks/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from agreement import Agreement, agreement  # noqa: E402
from peer_model import build_peer_model  # noqa: E402

PEERS = ROOT / ".cache" / "peers"
PROMPT = "In a quiet village by the sea, an old fisherman"  # greedy: no end-of-turn within 64 tokens
SHORT = {"grad_x_input": "grad×input", "integrated_gradients": "IG", "generate": "generate only"}
TARGETS = {("grad_x_input", 32): 3.0, ("integrated_gradients", 32): 2.0}
# Runs per (method, N) on a 2-core machine, sized so that the default run fits 20 to 30 minutes: IG over
# the growing prefix costs the peers (and us) minutes per call at 32 tokens, so its cells run once.
REPEATS = {
    ("generate", 8): 2,
    ("generate", 32): 2,
    ("generate", 64): 1,
    ("grad_x_input", 8): 3,
    ("grad_x_input", 32): 3,
    ("grad_x_input", 64): 1,
    ("integrated_gradients", 8): 1,
    ("integrated_gradients", 32): 1,
    ("integrated_gradients", 64): 1,
}
# The cells the targets are set on come first, so that a run cut short still answers them.
PRIORITY = {
    ("grad_x_input", 32): 0,
    ("integrated_gradients", 32): 1,
    ("grad_x_input", 8): 2,
    ("integrated_gradients", 8): 3,
    ("grad_x_input", 64): 4,
}


@dataclass
class Worker:
    """One tool's process: JSON lines in and out (worker_io.py)."""

    name: str
    command: list[str]
    log_path: Path
    hello: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log: IO[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            text=True,
            cwd=ROOT,
        )

    def ready(self) -> dict[str, Any]:
        self.hello = self._read()
        return self.hello

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}); log tail:\n{tail}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.name} failed:\n{reply['error']}")
        return reply

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.request({"op": "quit"})
            except (RuntimeError, BrokenPipeError, OSError):
                pass
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()


def worker_commands(tools: list[str], model_dir: Path, ours_dtype: str) -> dict[str, list[str]]:
    python = str(ROOT / ".venv" / "bin" / "python")
    table = {
        "ours": [python, str(HERE / "worker_ours.py"), "daemon", "--dtype", ours_dtype],
        "ours-inprocess": [python, str(HERE / "worker_ours.py"), "inprocess", "--dtype", ours_dtype],
        # The same warm daemon, asked for backward_precision "reduced" (bf16 matmuls in the backward only).
        "ours-reduced": [python, str(HERE / "worker_ours.py"), "daemon", "--dtype", ours_dtype,
                         "--params", json.dumps({"score": "prob", "rankings": False, "backward_precision": "reduced"})],
        "ecco": [str(PEERS / "ecco" / "bin" / "python"), str(HERE / "worker_ecco.py"), str(model_dir)],
        "inseq": [str(PEERS / "inseq" / "bin" / "python"), str(HERE / "worker_inseq.py"), str(model_dir)],
    }
    missing = [t for t in tools if t in ("ecco", "inseq") and not Path(table[t][0]).exists()]
    if missing:
        raise SystemExit(f"missing peer environment(s) {missing}: run benchmarks/peers/setup_peers.sh first")
    return {t: table[t] for t in tools}


def fmt_s(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({len(values)})" if values else "-"


def render(results: dict[str, Any], tools: list[str]) -> str:
    """Markdown tables: wall and CPU medians with run counts, the faster peer and our ratio; agreement."""
    lines = ["Wall time, end to end (median, runs in brackets)", ""]
    lines += ratio_table(results, tools, "seconds")
    lines += ["", "CPU time of the process doing the work (all threads; median)", ""]
    lines += ratio_table(results, tools, "cpu_seconds")
    lines += ["", "Agreement with ours: Spearman per output token (min / median; target ≥ 0.99)", ""]
    lines += ["| work | N | pair | agreement |", "| --- | --- | --- | --- |"]
    for cell in display_order(results["cells"]):
        for pair, text in cell.get("agreement", {}).items():
            lines.append(f"| {SHORT[cell['method']]} | {cell['n']} | {pair} | {text} |")
    return "\n".join(lines)


def display_order(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(cells, key=lambda cell: (list(SHORT).index(cell["method"]), cell["n"]))


def ratio_table(results: dict[str, Any], tools: list[str], key: str) -> list[str]:
    """One row per cell: each tool's median, the faster peer, and each of our variants' ratio to it."""
    peers = [t for t in tools if t in ("ecco", "inseq")]
    ours_names = [t for t in tools if t.startswith("ours")]
    head = ["work", "N", *tools, "faster peer", *(f"peer / {name}" for name in ours_names), "target"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for cell in display_order(results["cells"]):
        times = cell.get(key, {})
        row = [SHORT[cell["method"]], str(cell["n"]), *(fmt_s(times.get(t, [])) for t in tools)]
        peer_medians = {p: statistics.median(times[p]) for p in peers if times.get(p)}
        if not peer_medians:
            lines.append("| " + " | ".join(row + ["-"] * (len(ours_names) + 2)) + " |")
            continue
        best = min(peer_medians, key=peer_medians.get)
        target = TARGETS.get((cell["method"], cell["n"]))
        ratios, verdicts = [], []
        for name in ours_names:
            ours = statistics.median(times[name]) if times.get(name) else None
            ratio = peer_medians[best] / ours if ours else None
            ratios.append("-" if ratio is None else f"{ratio:.2f}×")
            if target is not None and ratio is not None:
                verdicts.append(f"{name} {'met' if ratio >= target else 'MISSED'}")
        verdict = "" if target is None else f"≥ {target:g}×: " + ", ".join(verdicts)
        lines.append("| " + " | ".join([*row, best, *ratios, verdict]) + " |")
    return lines


def compare(cell: dict[str, Any], saved: dict[str, tuple[np.ndarray, list[int], int]]) -> dict[str, str]:
    out: dict[str, str] = {}
    names = list(saved)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    for a, b in pairs:
        arr_a, ids_a, n_input = saved[a]
        arr_b, ids_b, n_input_b = saved[b]
        if n_input != n_input_b:
            out[f"{a} vs {b}"] = f"different prompt tokenization ({n_input} vs {n_input_b} tokens)"
            continue
        result: Agreement = agreement(arr_a, ids_a, arr_b, ids_b, n_input)
        out[f"{a} vs {b}"] = result.describe()
        cell.setdefault("agreement_numbers", {})[f"{a} vs {b}"] = result.__dict__
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tools", default="ours,ours-reduced,ecco,inseq",
        help="comma list from ours, ours-reduced, ours-inprocess, ecco, inseq"
    )
    parser.add_argument("--ns", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument(
        "--ig-ns",
        type=int,
        nargs="+",
        default=[8, 32],
        help="N for integrated gradients (64 adds about 30 minutes on 2 cores)",
    )
    parser.add_argument("--methods", nargs="+", default=["generate", "grad_x_input", "integrated_gradients"])
    parser.add_argument("--steps", type=int, default=50, help="integrated gradients steps")
    parser.add_argument("--repeats", type=int, default=None, help="runs per cell (default: per-cell table)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for every tool")
    parser.add_argument("--ours-dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--prompt", default=PROMPT)
    parser.add_argument(
        "--budget-s",
        type=float,
        default=1500.0,
        help="after this many seconds, cells still to come get one run each",
    )
    parser.add_argument("--quick", action="store_true", help="N=4 and 8, one run each: a check that all runs")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "benchmarks")
    args = parser.parse_args()
    if args.quick:
        args.ns, args.ig_ns, args.repeats = [4, 8], [4, 8], 1
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]

    from ecco_daemon.models.loader import pull_model

    source = pull_model("smollm2-135m", progress=False)
    model_dir = build_peer_model(source, PEERS / "model-smollm2")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = args.out / f"peers-{stamp}"
    (run_dir / "arrays").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "HF_HUB_OFFLINE": "1",
        "PYTHONWARNINGS": "ignore",
    }
    workers = [
        Worker(t, cmd, run_dir / f"{t}.log")
        for t, cmd in worker_commands(tools, model_dir, args.ours_dtype).items()
    ]
    started = time.monotonic()
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": _cpu_name(),
            "threads_per_tool": args.threads,
        },
        "model": str(source),
        "prompt": args.prompt,
        "steps": args.steps,
        "ours_dtype": args.ours_dtype,
        "cells": [],
    }
    try:
        for worker in workers:
            worker.start(env)
        for worker in workers:
            hello = worker.ready()
            print(f"ready: {worker.name} {json.dumps(hello)}", flush=True)
        results["tools"] = {w.name: w.hello for w in workers}
        for worker in workers:  # warm-up: first-call costs stay out of the medians
            worker.request(
                {
                    "op": "run",
                    "method": "grad_x_input",
                    "prompt": args.prompt,
                    "n": 2,
                    "steps": args.steps,
                    "save": None,
                }
            )
        cells = [
            (m, n)
            for m in args.methods
            for n in sorted(args.ig_ns if m == "integrated_gradients" else args.ns)
        ]
        cells.sort(key=lambda cell: PRIORITY.get(cell, 10))
        for method, n in cells:
            repeats = args.repeats or REPEATS.get((method, n), 1)
            if time.monotonic() - started > args.budget_s:
                repeats = 1
            cell: dict[str, Any] = {
                "method": method,
                "n": n,
                "seconds": {w.name: [] for w in workers},
                "cpu_seconds": {w.name: [] for w in workers},
            }
            saved: dict[str, tuple[np.ndarray, list[int], int]] = {}
            for rep in range(repeats):
                order = workers[rep % len(workers) :] + workers[: rep % len(workers)]
                for worker in order:
                    save = None
                    if rep == 0 and method != "generate":
                        save = str(run_dir / "arrays" / f"{worker.name}-{method}-{n}.npy")
                    reply = worker.request(
                        {
                            "op": "run",
                            "method": method,
                            "prompt": args.prompt,
                            "n": n,
                            "steps": args.steps,
                            "save": save,
                        }
                    )
                    cell["seconds"][worker.name].append(reply["seconds"])
                    cell["cpu_seconds"][worker.name].append(reply.get("cpu_seconds", float("nan")))
                    cell.setdefault("token_ids", {})[worker.name] = reply["token_ids"]
                    if reply.get("saved"):
                        saved[worker.name] = (np.load(reply["saved"]), reply["token_ids"], reply["n_input"])
                    cpu = reply.get("cpu_seconds", float("nan"))
                    print(
                        f"{SHORT[method]:>14} N={n:<3} run {rep + 1}/{repeats} {worker.name:<15}"
                        f"{reply['seconds']:8.2f} s  cpu {cpu:7.2f} s  "
                        f"(elapsed {time.monotonic() - started:6.0f} s)",
                        flush=True,
                    )
            cell["agreement"] = compare(cell, saved)
            results["cells"].append(cell)
            _write(run_dir, results, tools)
    finally:
        for worker in workers:
            worker.stop()
    results["elapsed_s"] = time.monotonic() - started
    table = _write(run_dir, results, tools)
    print()
    print(
        f"machine: {results['machine']}; model {source.name}; prompt {args.prompt!r}; "
        f"IG steps {args.steps}; ours dtype {args.ours_dtype}"
    )
    print(table)
    print(f"\nwhole run {results['elapsed_s']:.0f} s; results in {run_dir}")
    return 0


def _write(run_dir: Path, results: dict[str, Any], tools: list[str]) -> str:
    table = render(results, tools)
    (run_dir / "results.json").write_text(json.dumps(results, indent=1))
    (run_dir / "table.md").write_text(table + "\n")
    return table


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    raise SystemExit(main())
