"""The scheduler's fairness and the result store's isolation, time-to-live and memory cap."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from ecco_daemon.runtime.scheduler import Scheduler
from ecco_daemon.runtime.store import ResultStore
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job
from ecco_daemon.server.users import User


def make_job(user: str, request_id: str, batch_key=None) -> Job:
    operation = SimpleNamespace(name="generate")
    job = Job(request_id, b"id", User(user, "k"), operation, None, None, None, None)
    job.batch_key = batch_key
    return job


def test_round_robin_across_users_whatever_the_arrival_order():
    positions: dict[str, int] = {}
    scheduler = Scheduler(on_position=lambda job, pos, total: positions.__setitem__(job.request_id, pos),
                          position_interval_s=0)
    for request_id in ("a1", "a2", "a3"):
        scheduler.submit(make_job("alice", request_id))
    scheduler.submit(make_job("bob", "b1"))
    scheduler.submit(make_job("carol", "c1"))
    assert positions == {"a1": 1, "a2": 4, "a3": 5, "b1": 2, "c1": 3}
    order = [scheduler.next_batch()[0].request_id for _ in range(5)]
    assert order == ["a1", "b1", "c1", "a2", "a3"]


def test_queue_positions_are_coalesced_not_sent_for_every_change():
    """200 queued jobs drained one by one: each hears its position when queued, then at most once per
    interval, and the last position it hears is the true one (the tick sends what was held back)."""
    now = [0.0]
    told: dict[str, list[int]] = {}
    scheduler = Scheduler(max_queued_per_user=1000, position_interval_s=1.0, clock=lambda: now[0],
                          on_position=lambda job, pos, total: told.setdefault(job.request_id, []).append(pos))
    for index in range(200):
        scheduler.submit(make_job(f"user{index % 4}", f"r{index}"))
    sent_while_queueing = sum(len(v) for v in told.values())
    for _ in range(150):  # 150 jobs leave within one interval: the others' positions are held back
        scheduler.next_batch()
    assert sum(len(v) for v in told.values()) == sent_while_queueing
    now[0] = 1.5
    scheduler.tick()
    left = {job["id"]: job["position"] for job in scheduler.snapshot()}
    assert len(left) == 50 and all(told[rid][-1] == position for rid, position in left.items())
    assert sum(len(v) for v in told.values()) <= 2 * 200  # was one event per job per change: ~n²/2
    scheduler.tick()  # nothing changed since: nothing more is sent
    assert sum(len(v) for v in told.values()) <= 2 * 200


def test_batches_take_only_compatible_jobs():
    scheduler = Scheduler()
    scheduler.submit(make_job("alice", "a1", ("generate", "m")))
    scheduler.submit(make_job("bob", "b1", ("analyze", "m")))
    scheduler.submit(make_job("carol", "c1", ("generate", "m")))
    batch = scheduler.next_batch(max_size=4)
    assert [j.request_id for j in batch] == ["a1", "c1"]
    assert [j.request_id for j in scheduler.next_batch(max_size=4)] == ["b1"]


def test_per_user_queue_limit_and_removal():
    scheduler = Scheduler(max_queued_per_user=2)
    jobs = [make_job("alice", f"a{i}") for i in range(2)]
    for job in jobs:
        scheduler.submit(job)
    with pytest.raises(OperationError) as info:
        scheduler.submit(make_job("alice", "a2"))
    assert info.value.code.value == "QUOTA_EXCEEDED"
    scheduler.submit(make_job("bob", "b0"))
    assert scheduler.remove(jobs[0]) and not scheduler.remove(jobs[0])
    assert len(scheduler) == 2


def test_store_isolates_users_and_distinguishes_evicted_from_unknown():
    store = ResultStore(ttl_seconds=60, max_bytes=100)
    mine = store.put("alice", "run", "alice's", nbytes=60)
    assert store.get("alice", mine).value == "alice's"
    with pytest.raises(OperationError) as info:
        store.get("bob", mine)
    assert info.value.code.value == "NOT_FOUND"
    store.put("bob", "run", "bob's", nbytes=60)  # over the cap: alice's, least recently used, goes
    with pytest.raises(OperationError) as info:
        store.get("alice", mine)
    assert info.value.code.value == "RESULT_EVICTED"
    with pytest.raises(OperationError) as info:
        store.put("alice", "run", "huge", nbytes=101)
    assert info.value.code.value == "TOO_LARGE"


def test_store_time_to_live():
    store = ResultStore(ttl_seconds=0.05, max_bytes=100)
    result_id = store.put("alice", "run", 1, nbytes=1)
    time.sleep(0.1)  # the TTL itself is what is under test
    with pytest.raises(OperationError) as info:
        store.get("alice", result_id)
    assert info.value.code.value == "RESULT_EXPIRED"
