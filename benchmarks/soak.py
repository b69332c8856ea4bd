"""Soak: 8 clients with mixed operations for 10 minutes; latency per operation and the daemon's memory.

Usage: .venv/bin/python benchmarks/soak.py [--model PATH_OR_ALIAS] [--clients 8] [--minutes 10]
       [--store-mb 16] [--warmup 180]

Each client loops over generate (streamed), analyze with an attribution, three views of that result,
results.info, ping and, every other round, results.release (the rest are left to the store's cap). The
daemon runs with a small result store (``--store-mb``) so that its cap is reached early; the reply
journal (PROTOCOL.md §5.2) fills for its time-to-live (120 s); after both, the memory they hold stops
growing, hence the warm-up. RSS is sampled every 5 s; the verdict compares the mean RSS of the first minute
after ``--warmup`` with the last minute: flat means within 10 %.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ecco_client  # noqa: E402
from benchmarks.ping_latency import percentile  # noqa: E402
from tests.daemon_process import DaemonProcess  # noqa: E402
from tests.service.multiuser_support import add_user  # noqa: E402
from tests.tiny_models import build_tiny_model  # noqa: E402

VIEWS = [("layer_predictions", {"position": 2, "topk": 5}), ("rankings", {}), ("nmf", {"n_components": 3})]


def client_loop(connection_file: Path, index: int, until: float, latencies: dict[str, list[float]],
                errors: collections.Counter, lock: threading.Lock) -> None:
    def timed(name: str, call, *args, **kwargs) -> object:
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        except ecco_client.EccoError as exc:
            with lock:
                errors[f"{name}: {type(exc).__name__}"] += 1
            return None
        finally:
            with lock:
                latencies[name].append((time.perf_counter() - start) * 1000)

    with ecco_client.connect(connection_file=connection_file, timeout=120) as client:
        lm = client.model()
        round_ = 0
        while time.monotonic() < until:
            round_ += 1
            timed("generate", lm.generate, f"Client {index} round {round_}:", generate=8)
            out = timed("analyze", lm.analyze, f"client {index} writes round {round_} of the soak",
                        attribution=["grad_x_input"])
            if out is not None:
                result_id = out.result_id  # type: ignore[attr-defined]
                for view, params in VIEWS:
                    timed(f"view {view}", client.call, "view", {"result_id": result_id, "view": view, "params": params})
                timed("results.info", client.call, "results.info", {"result_id": result_id})
                if round_ % 2:
                    timed("results.release", client.call, "results.release", {"result_id": result_id})
            timed("ping", client.ping)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--store-mb", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=180.0)
    args = parser.parse_args()
    latencies: dict[str, list[float]] = collections.defaultdict(list)
    errors: collections.Counter = collections.Counter()
    lock = threading.Lock()
    samples: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(build_tiny_model("llama", Path(tmp) / "tiny-llama"))
        with DaemonProcess(Path(tmp) / "daemon", [model], extra_args=["--result-store-mb", str(args.store_mb)]) as d:
            files = [add_user(d.state_dir, f"soak{i}") for i in range(args.clients)]
            daemon_process = psutil.Process(d.process.pid)  # type: ignore[union-attr]
            start = time.monotonic()
            until = start + args.minutes * 60
            threads = [threading.Thread(target=client_loop, args=(f, i, until, latencies, errors, lock), daemon=True)
                       for i, f in enumerate(files)]
            for thread in threads:
                thread.start()
            while any(t.is_alive() for t in threads):
                samples.append((time.monotonic() - start, daemon_process.memory_info().rss / 2**20))
                time.sleep(5)
            for thread in threads:
                thread.join()
    print(f"model: {args.model or 'tiny random llama'}; {args.clients} clients for {args.minutes:g} min")
    print(f"{'operation':<24}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}")
    for name in sorted(latencies):
        values = latencies[name]
        print(f"{name:<24}{len(values):>7}{statistics.median(values):>10.1f}{percentile(values, 0.99):>10.1f}")
    print(f"errors: {dict(errors) or 'none'}")
    first = [rss for t, rss in samples if args.warmup <= t < args.warmup + 60]
    last = [rss for t, rss in samples if t >= samples[-1][0] - 60]
    print("RSS MiB over time: " + ", ".join(f"{t:.0f}s {rss:.0f}" for t, rss in samples[:: max(1, len(samples) // 12)]))
    if first and last:
        start_rss, end_rss = statistics.mean(first), statistics.mean(last)
        change = (end_rss - start_rss) / start_rss * 100
        print(f"RSS after warm-up {start_rss:.0f} MiB, at the end {end_rss:.0f} MiB: {change:+.1f}% "
              f"({'flat' if abs(change) <= 10 else 'NOT flat'}, within 10 % required)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
