"""Model replicas on Ray against the in-process executor: throughput with 8 clients, and Ray's cost per request.

Usage: .venv/bin/python benchmarks/replicas.py [--model smollm2-135m] [--clients 8] [--tokens 32] [--rounds 3]
       [--latency-requests 200] [--json out.json]
       On a GPU host: [--smollm2-shaped] [--gpus-per-replica 0.5] (benchmarks/gpu/replicas_gpu.sh)

Four daemons, one after the other, each serving the same model:
- ``thread/1`` and ``thread/2``: the in-process executor with 1 and 2 torch threads;
- ``ray x1`` and ``ray x2``: ``serve --ray`` (a local Ray instance on loopback) with 1 and 2 replicas of
  1 CPU (1 torch thread) each.

For each: aggregate tokens/s of ``--clients`` clients generating at once (``throughput.run_clients``:
greedy, ``--tokens`` new tokens, ``--rounds`` each), aggregate analyses/s of the same clients sending
teacher-forced analyses with grad×input, and one client's sequential round trips for a one-token
generation (p50/p99): the difference to ``thread/1`` is what the front door to replica hop costs per
request. On 2 cores, 2 replicas cannot double anything: everything shares the same two cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ecco_client  # noqa: E402
from benchmarks.clients import run_at_once  # noqa: E402
from benchmarks.ping_latency import percentile  # noqa: E402
from benchmarks.report import markdown_table, save_json  # noqa: E402
from benchmarks.throughput import PROMPTS, run_clients  # noqa: E402
from tests.daemon_process import DaemonProcess  # noqa: E402

ANALYSIS_TEXT = "The capital of France is Paris, and the capital of Germany is Berlin."
VARIANTS: dict[str, tuple[list[str], str]] = {  # name: (serve arguments, torch threads in the daemon)
    "thread/1": ([], "1"),
    "thread/2": ([], "2"),
    "ray x1": (["--ray", "--replicas", "1", "--cpus-per-replica", "1", "--ray-num-cpus", "2"], "1"),
    "ray x2": (["--ray", "--replicas", "2", "--cpus-per-replica", "1", "--ray-num-cpus", "2"], "1"),
}


@dataclass
class Result:
    variant: str
    tokens_per_s: float
    analyses_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    front_door_rss_mib: float
    start_s: float


def analyses_per_s(daemon: DaemonProcess, n_clients: int, rounds: int) -> float:
    def work(client: ecco_client.Client, index: int) -> None:
        lm = client.model()
        for _ in range(rounds):
            lm.analyze(ANALYSIS_TEXT, attribution=["grad_x_input"])

    return n_clients * rounds / run_at_once(daemon.connection_file, n_clients, work)


def round_trips_ms(daemon: DaemonProcess, count: int) -> list[float]:
    with ecco_client.connect(connection_file=daemon.connection_file, timeout=60) as client:
        lm = client.model()
        times = []
        for index in range(count):
            started = time.perf_counter()
            lm.generate(PROMPTS[index % len(PROMPTS)], generate=1, alternatives=1)
            times.append((time.perf_counter() - started) * 1000)
        return times


def smollm2_shaped(dest: Path) -> str:
    """A SmolLM2-shaped Llama with random weights (timing does not depend on them) and a small tokenizer, for
    machines that cannot fetch the real one (the GPU host reaches no registry)."""
    from benchmarks.gpu.attribution_gpu import SMOLLM2, build_model
    from tests.tiny_models import build_tokenizer

    build_model(SMOLLM2, torch.float32, torch.device("cpu")).save_pretrained(dest)
    build_tokenizer("llama").save_pretrained(dest)
    return str(dest)


def run_variant(name: str, args: argparse.Namespace) -> Result:
    serve_args, threads = VARIANTS[name]
    if "--ray" in serve_args and args.gpus_per_replica:
        serve_args = [*serve_args, "--gpus-per-replica", str(args.gpus_per_replica)]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with DaemonProcess(Path(tmp), [args.model], serve_args, env={"OMP_NUM_THREADS": threads}) as daemon:
            start_s = time.perf_counter() - started
            with ecco_client.connect(connection_file=daemon.connection_file, timeout=120) as warm:
                for _ in range(4):  # first-call costs (and every replica's) out of the measurement
                    warm.model().generate(PROMPTS[0], generate=4)
                    warm.model().analyze(ANALYSIS_TEXT, attribution=["grad_x_input"])
            generation = run_clients(daemon, args.clients, args.tokens, args.rounds)
            analyses = analyses_per_s(daemon, args.clients, args.rounds)
            latency = round_trips_ms(daemon, args.latency_requests)
            assert daemon.process is not None
            rss = psutil.Process(daemon.process.pid).memory_info().rss / 2**20
    return Result(name, generation.tokens_per_s, analyses, percentile(latency, 0.5), percentile(latency, 0.99),
                  rss, start_s)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per generation")
    parser.add_argument("--rounds", type=int, default=3, help="requests per client, back to back")
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--smollm2-shaped", action="store_true", help="a random SmolLM2-shaped model instead")
    parser.add_argument("--gpus-per-replica", type=float, default=0.0, help="0.5: two replicas share one GPU")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.smollm2_shaped:
            args.model = smollm2_shaped(Path(tmp) / "smollm2-shaped")
        results = [run_variant(name, args) for name in args.variants]
    base = results[0]
    print(f"model {args.model}, {args.clients} clients, {args.tokens} new tokens x {args.rounds} generations and "
          f"{args.rounds} grad×input analyses each; cpu count {psutil.cpu_count()}, "
          f"load average {psutil.getloadavg()[0]:.1f}")
    ref = base.variant
    print(markdown_table(
        ["executor", "tokens/s", f"x {ref}", "analyses/s", f"x {ref}", "1-token request p50 ms", "p99 ms",
         f"p50 over {ref} ms", f"p99 over {ref} ms", "front door RSS MiB", "start s"],
        [[r.variant, f"{r.tokens_per_s:.1f}", f"{r.tokens_per_s / base.tokens_per_s:.2f}", f"{r.analyses_per_s:.2f}",
          f"{r.analyses_per_s / base.analyses_per_s:.2f}", f"{r.latency_p50_ms:.1f}", f"{r.latency_p99_ms:.1f}",
          f"{r.latency_p50_ms - base.latency_p50_ms:+.1f}", f"{r.latency_p99_ms - base.latency_p99_ms:+.1f}",
          f"{r.front_door_rss_mib:.0f}", f"{r.start_s:.0f}"] for r in results]))
    save_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
