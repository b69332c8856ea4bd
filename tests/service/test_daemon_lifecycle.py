"""Daemon death and shutdown: no client ever hangs, every pending request is answered or failed."""

from __future__ import annotations

import time

import pytest

import ecco_client
from tests.daemon_process import DaemonProcess


@pytest.fixture()
def fresh_daemon(tiny_llama, tmp_path):
    with DaemonProcess(tmp_path, [str(tiny_llama)]) as process:
        yield process


def test_killed_daemon_fails_the_pending_request_within_the_timeout(fresh_daemon):
    with ecco_client.connect(connection_file=fresh_daemon.connection_file, timeout=3) as client:
        handle = client.request("generate", {"prompt": "x", "generate": 1000})
        next(e for e in handle.events() if e.name == "token")
        fresh_daemon.kill()
        start = time.monotonic()
        with pytest.raises(ecco_client.DaemonUnavailable):
            handle.result()
        assert time.monotonic() - start < 4


def test_sigterm_answers_in_flight_requests_and_exits_cleanly(fresh_daemon):
    with ecco_client.connect(connection_file=fresh_daemon.connection_file, timeout=10) as client:
        running = client.request("generate", {"prompt": "x", "generate": 1000})
        # Long too: generations on one model are batched, so a short one could finish before the signal.
        queued = client.request("generate", {"prompt": "y", "generate": 1000})
        next(e for e in running.events() if e.name == "token")
        assert fresh_daemon.terminate(timeout=15) == 0
        for handle in (running, queued):
            with pytest.raises(ecco_client.RemoteError) as info:
                handle.result()
            assert info.value.code == "SHUTTING_DOWN"
        assert "stopped" in fresh_daemon.log()


def test_queued_jobs_report_their_position(fresh_daemon):
    with ecco_client.connect(connection_file=fresh_daemon.connection_file, timeout=10) as client:
        first = client.request("generate", {"prompt": "x", "generate": 300})
        second = client.request("generate", {"prompt": "y", "generate": 2})
        positions = [e.content["position"] for e in second.events() if e.name == "queued"]
        assert positions and positions[0] >= 1
        first.cancel()
