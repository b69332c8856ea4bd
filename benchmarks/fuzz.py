"""Fuzz a live daemon with 100,000 frames and print what happened to it.

Usage: .venv/bin/python benchmarks/fuzz.py [--frames 100000] [--families llama,bert,t5] [--batch 20]
The daemon serves tiny random models (tests/tiny_models.py) under the fuzzing limits of tests/fuzz/session.py.
Prints frames sent, daemon deaths (each one restarts it), hangs, INTERNAL replies, replies by code and by
operation, and the first messages behind each problem. Exits 1 when there was any problem.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fuzz.session import FuzzSession, fuzz_daemon  # noqa: E402
from tests.tiny_models import build_tiny_model  # noqa: E402

ROUND = 100  # batches per hypothesis run; each run draws afresh


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--families", default="llama,bert,t5", help="tiny models to serve (tests/tiny_models.py)")
    parser.add_argument("--batch", type=int, default=20, help="most messages in one batch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = [build_tiny_model(family, Path(tmp) / family) for family in args.families.split(",")]
        with fuzz_daemon(Path(tmp) / "daemon", models) as daemon:
            session = FuzzSession(daemon)
            start = time.monotonic()
            while session.counts.frames < args.frames:
                session.run(ROUND, batch_size=args.batch, min_batch=args.batch // 2, strict=False)
                print(f"  {session.counts.frames} frames, {time.monotonic() - start:.0f}s", file=sys.stderr)
            elapsed = time.monotonic() - start
    counts = session.counts
    print(f"models: {args.families}; {elapsed:.0f}s, {counts.frames / elapsed:.0f} frames/s")
    print(counts.summary())
    print("replies by code: " + ", ".join(f"{code} {n}" for code, n in counts.codes.most_common()))
    print(f"{'signed request':<34}{'code':<20}{'replies':>8}")
    for (operation, code), n in sorted(counts.by_operation.items()):
        print(f"{operation:<34}{code:<20}{n:>8}")
    for failure in counts.failures:
        print("problem:", failure)
    return 0 if counts.clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
