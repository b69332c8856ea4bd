"""What one user can do to the others, measured: pings under hostile prompts, a slow reader, a kill -9.

Usage: .venv/bin/python benchmarks/safety.py [--model PATH_OR_ALIAS] [--pings 500] [--requests 200]
       [--pause 10] [--results 20]

1. Another user's ping round trip (p50/p99/max) while a hostile user keeps sending 1 MB prompts.
2. A reader that stops reading for ``--pause`` seconds with ``--requests`` generations in flight:
   how many final replies never arrive (the daemon keeps them; PROTOCOL.md §5.2).
3. ``--results`` analyses stored, the daemon killed with SIGKILL and restarted on the same state folder:
   how many are still viewable.
Without ``--model`` a tiny random Llama is built (what CI's tests use); pass smollm2-135m for the real one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ecco_client  # noqa: E402
from benchmarks.ping_latency import percentile  # noqa: E402
from tests.daemon_process import DaemonProcess  # noqa: E402
from tests.service.multiuser_support import RawClient, add_user  # noqa: E402
from tests.tiny_models import build_tiny_model  # noqa: E402


def hostile_pings(daemon: DaemonProcess, pings: int) -> tuple[list[float], list[float], int]:
    victim_file = add_user(daemon.state_dir, "victim")
    with ecco_client.connect(connection_file=victim_file, timeout=30) as victim:
        idle = [victim.ping() * 1000 for _ in range(pings)]
        stop = threading.Event()
        sent = [0]

        def attack() -> None:
            hostile = RawClient(daemon.info)
            prompt = "lorem ipsum dolor sit amet " * 37_000  # 1 MB, under the text limit
            while not stop.is_set():
                hostile.send("analyze", {"text": prompt})
                sent[0] += 1
                while hostile.socket.poll(0):
                    hostile.receive(0)
                time.sleep(0.05)
            hostile.close()

        attacker = threading.Thread(target=attack, daemon=True)
        attacker.start()
        time.sleep(0.5)
        busy = [victim.ping() * 1000 for _ in range(pings)]
        stop.set()
        attacker.join()
    return idle, busy, sent[0]


def slow_reader(daemon: DaemonProcess, requests: int, pause_s: float) -> tuple[int, int]:
    reader = RawClient(daemon.info)
    reader.socket.setsockopt(zmq.RCVHWM, 10)  # its buffer fills at once: the daemon must hold the rest
    ids = [reader.send("generate", {"prompt": f"request {i} says", "generate": 8}) for i in range(requests)]
    time.sleep(pause_s)  # not reading
    deadline = time.monotonic() + 120
    while not all(reader.finished(i) for i in ids) and time.monotonic() < deadline:
        reader.receive(1.0)
    answered = sum(reader.finished(i) for i in ids)
    reader.close()
    return requests - answered, requests


def survives_restart(daemon: DaemonProcess, results: int) -> tuple[int, int]:
    with ecco_client.connect(connection_file=daemon.connection_file, timeout=60) as client:
        lm = client.model()
        ids = [lm.analyze(f"text number {i} for the store", attribution=["grad_x_input"]).result_id
               for i in range(results)]
    daemon.kill()
    daemon.start()
    viewable = 0
    with ecco_client.connect(connection_file=daemon.connection_file, timeout=60) as client:
        for result_id in ids:
            try:
                client.call("view", {"result_id": result_id, "view": "rankings", "params": {}})
                viewable += 1
            except ecco_client.RemoteError:
                pass
    return viewable, results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--pings", type=int, default=500)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pause", type=float, default=10.0)
    parser.add_argument("--results", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(build_tiny_model("llama", Path(tmp) / "tiny-llama"))
        with DaemonProcess(Path(tmp) / "daemon", [model]) as daemon:
            idle, busy, attacks = hostile_pings(daemon, args.pings)
            lost, sent = slow_reader(daemon, args.requests, args.pause)
            viewable, stored = survives_restart(daemon, args.results)
    print(f"model: {args.model or 'tiny random llama'}")
    print(f"{'another user pings':<34}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for label, values in (("idle", idle), (f"under {attacks} 1 MB prompts", busy)):
        print(f"{label:<34}{len(values):>6}{statistics.median(values):>10.2f}"
              f"{percentile(values, 0.99):>10.2f}{max(values):>10.2f}")
    print(f"slow reader (paused {args.pause:g}s): {lost} of {sent} final replies lost")
    print(f"kill -9 and restart: {viewable} of {stored} stored results viewable")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
