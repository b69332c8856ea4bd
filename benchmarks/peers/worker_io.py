"""The line protocol between the benchmark driver and one tool's worker process (standard library only).

Why: each peer lives in its own virtual environment with its own transformers, so it runs as a separate
process that loads the model once and then answers requests, one JSON line in, one JSON line out. Library
prints go to stderr so that they can never corrupt a reply.

Request:  {"op": "run", "method": "grad_x_input" | "integrated_gradients" | "generate", "prompt": str,
           "n": int, "steps": int, "save": path or null}
Reply:    {"seconds": float, "cpu_seconds": float, "token_ids": [int], "n_input": int, "saved": path or null}
          or {"error": str}. cpu_seconds is the CPU time (all threads) of the process that did the work; on a
          machine shared with other work it moves less than the wall time does.
A saved attribution is an (N, S) float32 .npy: row n holds output token n's normalized attribution over
all S tokens (0 where a token may not explain it).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

METHODS = ("grad_x_input", "integrated_gradients")


def set_threads(torch: Any) -> None:
    """Use the thread count the driver chose for every tool (OMP_NUM_THREADS)."""
    threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    if threads > 0:
        torch.set_num_threads(threads)


def serve(handle: Callable[[dict[str, Any]], dict[str, Any]], hello: dict[str, Any]) -> None:
    """Answer requests from stdin until {"op": "quit"} or end of input."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed from now on lands on stderr
    sys.stdout = sys.stderr

    def send(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    send({"ready": True, **hello})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("op") == "quit":
            break
        try:
            cpu = time.process_time()
            reply = handle(request)
            reply.setdefault("cpu_seconds", time.process_time() - cpu)
            send(reply)
        except Exception:  # a failed cell is reported, the worker keeps serving
            send({"error": traceback.format_exc()})


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) of another process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
