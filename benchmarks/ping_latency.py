"""Ping round trips while a generation runs: proof that the socket loop never waits on model work.

Usage: .venv/bin/python benchmarks/ping_latency.py [--model smollm2-135m] [--pings 1000]
Prints p50/p99/max round trip of pings sent while a long generation streams, next to idle pings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ecco_client  # noqa: E402
from tests.daemon_process import DaemonProcess  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(client: ecco_client.Client, count: int) -> list[float]:
    return [client.ping() * 1000 for _ in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--pings", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, DaemonProcess(Path(tmp), [args.model]) as daemon:
        load_line = next((line for line in daemon.log().splitlines() if "model_registry: loaded" in line), "")
        with ecco_client.connect(connection_file=daemon.connection_file, timeout=30) as client:
            idle = measure(client, args.pings)
            handle = client.request("generate", {"prompt": "Once upon a time", "generate": 1000, "stream": True})
            next(e for e in handle.events() if e.name == "token")
            start = time.perf_counter()
            busy = measure(client, args.pings)
            elapsed = time.perf_counter() - start
            still_running = not handle.stream.done
            handle.cancel()
        print(f"model load: {load_line.split(': ', 1)[-1]}")
        print(f"{'pings':<28}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
        for label, values in (("idle", idle), ("during generation", busy)):
            print(f"{label:<28}{len(values):>6}{statistics.median(values):>10.3f}"
                  f"{percentile(values, 0.99):>10.3f}{max(values):>10.3f}")
        print(f"{args.pings} pings took {elapsed:.2f}s; generation still running afterwards: {still_running}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
