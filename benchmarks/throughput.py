"""Aggregate generation throughput with 1, 4 and 8 clients at once on one daemon, and its memory.

Usage: .venv/bin/python benchmarks/throughput.py [--model smollm2-135m] [--tokens 32] [--rounds 3]
       [--clients 1 4 8] [--threads 1] [--json out.json]

Each client is its own connection (own thread) and asks for ``--rounds`` greedy generations of
``--tokens`` new tokens, one after the other, on a prompt of its own. Aggregate tokens/s is every
generated token over the wall time from the common start to the last answer; concurrent requests are
decoded together by the daemon's batching, so throughput should grow with clients. The daemon's RSS
(psutil, sampled during each run) shows that the model's memory counts once however many users there are.
Other processes on the machine compete for the CPU: compare the ratios of one run, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ecco_client  # noqa: E402
from benchmarks.clients import run_at_once  # noqa: E402
from tests.daemon_process import DaemonProcess  # noqa: E402

PROMPTS = [
    "Once upon a time, in a small village by the sea,",
    "The history of the Roman Empire begins with",
    "Here is a long list of fruits: apples, pears,",
    "In computer science, a hash table is",
    "The recipe for a good tomato soup starts with",
    "My favourite places to visit in Europe are",
    "The rules of chess are simple. First,",
    "A short poem about the autumn wind:",
]


@dataclass
class Run:
    clients: int
    tokens: int
    seconds: float
    tokens_per_s: float
    rss_peak_mib: float
    rss_after_mib: float


class RssSampler(threading.Thread):
    """The daemon's resident memory, sampled until stopped; keeps the peak."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.peak = self.process.memory_info().rss
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval_s):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


def run_clients(daemon: DaemonProcess, n_clients: int, tokens: int, rounds: int) -> Run:
    counts = [0] * n_clients

    def work(client: ecco_client.Client, index: int) -> None:
        lm = client.model()
        for round_index in range(rounds):
            prompt = PROMPTS[(index + round_index) % len(PROMPTS)]
            out = lm.generate(prompt, generate=tokens, alternatives=5)
            counts[index] += len(out.token_ids) - out.n_input_tokens

    assert daemon.process is not None
    sampler = RssSampler(daemon.process.pid)
    sampler.start()
    try:
        seconds = run_at_once(daemon.connection_file, n_clients, work, timeout=120)
    finally:
        peak = sampler.stop()
    total = sum(counts)
    return Run(n_clients, total, seconds, total / seconds, peak / 2**20,
               psutil.Process(daemon.process.pid).memory_info().rss / 2**20)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per generation")
    parser.add_argument("--rounds", type=int, default=3, help="generations per client, back to back")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the daemon (OMP_NUM_THREADS)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            DaemonProcess(Path(tmp), [args.model], env={"OMP_NUM_THREADS": str(args.threads)}) as daemon:
        with ecco_client.connect(connection_file=daemon.connection_file, timeout=120) as warm:
            warm.model().generate(PROMPTS[0], generate=4)  # first-call costs out of the measurement
        runs = [run_clients(daemon, n, args.tokens, args.rounds) for n in args.clients]
    base = runs[0]
    print(f"model {args.model}, {args.tokens} new tokens x {args.rounds} rounds per client, "
          f"daemon torch threads {args.threads}, cpu count {psutil.cpu_count()}, "
          f"load average {psutil.getloadavg()[0]:.1f}")
    print("| clients | tokens | seconds | tokens/s | x one client | daemon RSS peak MiB | RSS / one client |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(f"| {run.clients} | {run.tokens} | {run.seconds:.2f} | {run.tokens_per_s:.1f} | "
              f"{run.tokens_per_s / base.tokens_per_s:.2f} | {run.rss_peak_mib:.0f} | "
              f"{run.rss_peak_mib / base.rss_peak_mib:.3f} |")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
