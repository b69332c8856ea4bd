"""This project as a benchmark worker, either through a warm daemon or in process.

Usage: .venv/bin/python benchmarks/peers/worker_ours.py daemon|inprocess [--dtype float32|bfloat16]
       [--params JSON]
- daemon: starts the real daemon (tests/daemon_process.py) with SmolLM2 and times the client's
  ``lm.generate(prompt, generate=N, attribution=[method])``, wire transfer included. This is the number
  the table reports for this project.
- inprocess: the same generation and analysis functions called directly (no sockets), to see how much
  of the time is the wire and to profile.
Every output token is attributed with the probability of the chosen token as the score, as Ecco and
inseq do, unless --params says otherwise. The rankings are left to be computed when a view asks
(``rankings: false``), as Ecco computes them only when ``output.rankings()`` is called; the layer states
they need are kept either way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "clients" / "python"))

from worker_io import METHODS, process_cpu_seconds, serve  # noqa: E402

MODEL = "smollm2-135m"


def full_matrix(values: np.ndarray, target_positions: np.ndarray, n_input: int, n_tokens: int) -> np.ndarray:
    """Rows for the generated tokens only: (targets, S) -> (N, S) with N = n_tokens - n_input."""
    matrix = np.zeros((n_tokens - n_input, n_tokens), dtype=np.float32)
    for row, position in zip(values, target_positions, strict=True):
        if position >= n_input:
            matrix[int(position) - n_input, : row.shape[-1]] = row
    return matrix


def attribution_from_output(output: Any, method: str) -> np.ndarray:
    """The (N, S) normalized attribution of a client Output: the generate result's "analysis" block."""
    n_input, n_tokens = int(output.n_input_tokens), len(output.token_ids)
    raw = getattr(output, "raw", {}) or {}
    analysis = raw.get("analysis") or raw
    block = (analysis.get("attributions") or {}).get(method)
    if block is None:
        raise RuntimeError(f"the daemon's result has no {method!r} attribution: {sorted(analysis)}")
    positions = np.asarray(analysis["target_positions"])
    return full_matrix(np.asarray(block["values"], dtype=np.float32), positions, n_input, n_tokens)


class DaemonTool:
    """A warm daemon with SmolLM2 and a connected client."""

    def __init__(self, stack: ExitStack, dtype: str, params: dict[str, Any]) -> None:
        import ecco_client
        from tests.daemon_process import DaemonProcess

        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ecco-bench-")))
        threads = os.environ.get("OMP_NUM_THREADS", "2")
        self.daemon = stack.enter_context(
            DaemonProcess(workdir, [MODEL], extra_args=["--dtype", dtype], env={"OMP_NUM_THREADS": threads})
        )
        self.client = stack.enter_context(
            ecco_client.connect(connection_file=self.daemon.connection_file, timeout=3600)
        )
        self.lm = self.client.model(MODEL)
        self.params = dict(params)

    def run(self, prompt: str, method: str, n: int, steps: int) -> tuple[float, Any]:
        extra: dict[str, Any] = {}
        if method in METHODS:
            extra = {"attribution": [method], **self.params}
            if method == "integrated_gradients":
                extra.setdefault("steps", steps)
        pid = self.daemon.process.pid
        cpu, start = process_cpu_seconds(pid), time.perf_counter()
        output = self.lm.generate(prompt, generate=n, **extra)
        seconds = time.perf_counter() - start
        self.cpu_seconds = process_cpu_seconds(pid) - cpu
        return seconds, output


class InProcessTool:
    """The daemon's own generation and analysis functions, called without sockets."""

    def __init__(self, dtype: str, params: dict[str, Any]) -> None:
        import torch

        from ecco_daemon.models.loader import load_model

        threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        if threads:
            torch.set_num_threads(threads)
        self.lm = load_model(MODEL, dtype=dtype, progress=False)
        self.params = dict(params)

    def run(self, prompt: str, method: str, n: int, steps: int) -> tuple[float, Any]:
        from ecco_daemon.analysis.options import AnalysisOptions
        from ecco_daemon.analysis.service import analyze
        from ecco_daemon.generation.decoding import SamplingParams, generate
        from ecco_daemon.models.tokens import encode_prompt

        start = time.perf_counter()
        ids = encode_prompt(self.lm.tokenizer, prompt)
        generated = generate(self.lm, ids, n, SamplingParams(), alternatives=5)
        token_ids = ids + list(generated.generated_ids)
        run = None
        if method in METHODS:
            options = AnalysisOptions(attribution=(method,), **{"score": "prob", "steps": steps, **self.params})
            run = analyze(self.lm.model, self.lm.tokenizer, token_ids, options, first_target=len(ids))
        seconds = time.perf_counter() - start
        return seconds, (token_ids, len(ids), run)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["daemon", "inprocess"])
    parser.add_argument("--dtype", default="float32")
    parser.add_argument(
        "--params",
        default='{"score": "prob", "rankings": false}',
        help="extra generate parameters for the attribution (JSON)",
    )
    args = parser.parse_args()
    params = json.loads(args.params)
    with ExitStack() as stack:
        tool = (
            DaemonTool(stack, args.dtype, params)
            if args.mode == "daemon"
            else InProcessTool(args.dtype, params)
        )

        def handle(request: dict[str, Any]) -> dict[str, Any]:
            method = request["method"]
            seconds, output = tool.run(request["prompt"], method, request["n"], request["steps"])
            if args.mode == "daemon":
                token_ids, n_input = [int(i) for i in output.token_ids], int(output.n_input_tokens)
            else:
                token_ids, n_input, run = output
            saved = None
            if method in METHODS and request.get("save"):
                if args.mode == "daemon":
                    matrix = attribution_from_output(output, method)
                else:
                    result = run.attributions[method]
                    matrix = full_matrix(result.values, result.target_positions, n_input, len(token_ids))
                np.save(request["save"], matrix)
                saved = request["save"]
            reply = {"seconds": seconds, "token_ids": token_ids, "n_input": n_input, "saved": saved}
            if args.mode == "daemon":
                reply["cpu_seconds"] = tool.cpu_seconds
            return reply

        import torch

        serve(
            handle,
            {
                "tool": f"ours-{args.mode}",
                "dtype": args.dtype,
                "torch": torch.__version__,
                "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or torch.get_num_threads()),
                "params": params,
            },
        )


if __name__ == "__main__":
    main()
