"""The result store on disk: results outlive the process, a kill -9 corrupts nothing, lookups stay per user."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from ecco_daemon.runtime.store import ResultStore
from ecco_daemon.server.errors import OperationError

ROOT = Path(__file__).resolve().parents[2]


def _code(store: ResultStore, user: str, result_id: str) -> str:
    with pytest.raises(OperationError) as info:
        store.get(user, result_id)
    return info.value.code.value


def test_results_survive_a_restart_with_their_codes(tmp_path: Path):
    store = ResultStore(ttl_seconds=60, max_bytes=1000, directory=tmp_path)
    evicted = store.put("bob", "analysis", "old", nbytes=500)
    kept = store.put("alice", "analysis", {"hidden": np.arange(6, dtype=np.float32)}, nbytes=100)
    store.put("carol", "analysis", "new", nbytes=500)  # over the cap: bob's, least recently used, goes
    store.close()

    again = ResultStore(ttl_seconds=60, max_bytes=1000, directory=tmp_path)
    np.testing.assert_array_equal(again.get("alice", kept).value["hidden"], np.arange(6, dtype=np.float32))
    assert _code(again, "bob", evicted) == "RESULT_EVICTED"
    assert _code(again, "bob", kept) == "NOT_FOUND"  # another user's id, as if it never existed
    assert again.usage("alice") == {"results": 1, "bytes": 100}
    again.close()


def test_an_entry_that_expired_while_stopped_answers_expired(tmp_path: Path):
    store = ResultStore(ttl_seconds=0.2, max_bytes=1000, directory=tmp_path)
    result_id = store.put("alice", "analysis", "soon gone", nbytes=10)
    store.close()
    time.sleep(0.3)  # the time-to-live itself is what is under test
    again = ResultStore(ttl_seconds=0.2, max_bytes=1000, directory=tmp_path)
    assert _code(again, "alice", result_id) == "RESULT_EXPIRED"
    assert not list(tmp_path.glob("*.result"))  # its file went with it
    again.close()


WRITER = """
import sys, numpy as np
from ecco_daemon.runtime.store import ResultStore
store = ResultStore(ttl_seconds=600, max_bytes=10**9, directory=sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    store.put("user%d" % (i % 3), "analysis", {"i": i, "data": np.full(50_000, i, dtype=np.float32)}, nbytes=200_000)
    i += 1
"""


def test_a_kill_9_mid_write_leaves_every_indexed_entry_whole(tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env)
    assert writer.stdout is not None and writer.stdout.readline().strip() == b"ready"
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("*.result"))) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait()

    store = ResultStore(ttl_seconds=600, max_bytes=10**9, directory=tmp_path)
    usage = store.usage()
    assert usage["results"] >= 20
    for (user, result_id) in list(store._order):
        value = store.get(user, result_id).value
        assert value["data"].shape == (50_000,) and (value["data"] == value["i"]).all()
    # Nothing stray is left: every file on disk is an indexed entry.
    assert len(list(tmp_path.glob("*.result*"))) == usage["results"]
    store.close()


class CountingOrderedDict(OrderedDict):
    """Counts the entries any full walk yields: a per-user lookup must not walk other users' entries."""

    walked = 0

    def __iter__(self):
        for key in super().__iter__():
            CountingOrderedDict.walked += 1
            yield key

    def items(self):
        for key in self:
            yield key, self[key]

    def values(self):
        for key in self:
            yield self[key]


def test_another_users_lookups_do_not_walk_a_crowded_store():
    store = ResultStore(ttl_seconds=600, max_bytes=10**9)
    store._order = CountingOrderedDict()
    for _ in range(5000):
        store.put("alice", "analysis", None, nbytes=1)
    mine = store.put("bob", "analysis", "bob's", nbytes=1)
    CountingOrderedDict.walked = 0
    for _ in range(100):
        assert store.get("bob", mine).value == "bob's"
        assert store.usage("bob") == {"results": 1, "bytes": 1}
    assert CountingOrderedDict.walked <= 200  # at most the oldest entry looked at, per call
