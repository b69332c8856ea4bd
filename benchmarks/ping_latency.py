"""Ping round trips while a generation runs: proof that the socket loop never waits on model work.

Usage: .venv/bin/python benchmarks/ping_latency.py [--model smollm2-135m] [--pings 1000]
       [--flood-clients 4] [--flood-pings 5000]
Prints p50/p99/max round trip of pings sent while a long generation streams, next to idle pings. Then
floods the socket loop: ``--flood-clients`` processes each keep 64 signed pings in flight until
``--flood-pings`` are answered; it prints the messages (requests and replies) per second and per CPU
second of the daemon, the figure that limits one front door (docs/scale.md).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ecco_client  # noqa: E402
from tests.daemon_process import DaemonProcess  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(client: ecco_client.Client, count: int) -> list[float]:
    return [client.ping() * 1000 for _ in range(count)]


def flood_client(connection_file: str, pings: int, window: int = 64) -> int:
    """One process's pings, ``window`` in flight at a time; returns how many were answered."""
    from tests.service.multiuser_support import RawClient

    client = RawClient.from_file(Path(connection_file))
    sent = answered = 0
    try:
        while answered < pings:
            while sent < pings and sent - answered < window:
                client.send("ping")
                sent += 1
            got = client.receive(10.0)
            if got is None:
                break
            answered += got[0]["event"] == "result"
    finally:
        client.close()
    return answered


def flood(daemon: DaemonProcess, clients: int, pings: int) -> tuple[float, float]:
    """(messages per second, messages per CPU second of the daemon) under a flood of pings."""
    assert daemon.process is not None
    process = psutil.Process(daemon.process.pid)
    cpu_before = sum(process.cpu_times()[:2])
    started = time.perf_counter()
    with ProcessPoolExecutor(clients, mp_context=multiprocessing.get_context("spawn")) as pool:  # no forked zmq
        answered = sum(pool.map(flood_client, [str(daemon.connection_file)] * clients, [pings] * clients))
    seconds = time.perf_counter() - started
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    messages = 2 * answered  # a request in, a result out
    return messages / seconds, messages / max(cpu, 1e-9)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--pings", type=int, default=1000)
    parser.add_argument("--flood-clients", type=int, default=4)
    parser.add_argument("--flood-pings", type=int, default=5000, help="pings per flooding client")
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
        if args.flood_clients > 0:
            per_s, per_cpu_s = flood(daemon, args.flood_clients, args.flood_pings)
            print(f"flood: {args.flood_clients} clients x {args.flood_pings} pings, 64 in flight each: "
                  f"{per_s:.0f} messages/s, {per_cpu_s:.0f} messages per CPU second of the daemon "
                  f"(cpu count {psutil.cpu_count()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
