"""A job past its time limit stops: it ends with TIMEOUT soon after the limit, and the worker is free again.

The limit is one second; integrated gradients with 1,000 steps over a long prompt would run for minutes on
the tiny model. The bounds are generous on purpose (a loaded machine): they tell a job that stopped from
one that ran on, not how fast the daemon is.
"""

from __future__ import annotations

import time

import pytest

from tests.daemon_process import DaemonProcess
from tests.service.multiuser_support import RawClient

LIMIT_S = 1.0
GRACE_S = 10.0  # after the limit, by when the job must have ended
PROMPT = "The quick brown fox jumps over the lazy dog. " * 90  # about 2,000 tokens


@pytest.fixture(scope="module")
def limited(tiny_llama, tmp_path_factory, request):
    args = ["--job-time-limit", str(LIMIT_S), "--max-job-cost", str(10**9)]
    with DaemonProcess(tmp_path_factory.mktemp("limited"), [str(tiny_llama)], extra_args=args) as daemon:
        request.node._daemon_process = daemon
        client = RawClient.from_file(daemon.connection_file)
        yield client
        client.close()


@pytest.mark.parametrize(("op", "params"), [
    ("generate", {"prompt": PROMPT, "generate": 2, "attribution": ["ig"], "steps": 1000}),
    ("analyze", {"text": PROMPT, "attribution": ["integrated_gradients", "occlusion"], "steps": 1000}),
])
def test_a_job_past_its_time_limit_stops(limited, op, params):
    start = time.monotonic()
    event, content = limited.call(op, params, timeout_s=600)
    elapsed = time.monotonic() - start
    assert event == "error" and content["code"] == "TIMEOUT", content
    assert LIMIT_S <= elapsed < LIMIT_S + GRACE_S
    # The work itself stopped: the one worker takes the next job at once.
    start = time.monotonic()
    event, content = limited.call("analyze", {"text": "The cat sat on the mat."}, timeout_s=600)
    assert event == "result", content
    assert time.monotonic() - start < GRACE_S
