"""Batched decoding gives each row the tokens it gets alone; the scheduler's batching, limits and deadlines."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
import torch
from ecco_protocol.codec import split_frames

from ecco_daemon.config import DaemonConfig
from ecco_daemon.generation.decoding import (
    BatchDecoder,
    DecodeRow,
    PositionLimitError,
    SamplingParams,
    can_batch,
    generate,
    position_limit,
)
from ecco_daemon.models.loaded import LoadedModel
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.runtime.deadlines import Deadlines
from ecco_daemon.runtime.job_batches import Outcome, one_shot, register_batch
from ecco_daemon.runtime.job_runner import JobRunner
from ecco_daemon.runtime.scheduler import Scheduler
from ecco_daemon.runtime.worker import Worker
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job
from ecco_daemon.server.users import User
from tests.tiny_models import load_tiny_model

PROMPTS = [
    "The capital of France is",
    "Hello",
    "A language model predicts the next token from the tokens before it",
    "the cat sat",
]


DEVICES = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]

def generate_batch(lm: LoadedModel, rows: list[DecodeRow]) -> list[DecodeRow]:
    """Decode all rows together until each is done (no joining), as the generate batch does without joiners."""
    decoder = BatchDecoder(lm)
    decoder.add(rows)
    decoder.drop_finished()
    while len(decoder):
        decoder.step()
    return rows


def tiny_lm(family: str, attn: str = "sdpa", stop_ids: frozenset[int] = frozenset(),
            device: str = "cpu") -> LoadedModel:
    model, tokenizer = load_tiny_model(family, attn)
    return LoadedModel(family, family, model.to(device), tokenizer, torch.device(device), torch.float32, 0.0,
                       stop_ids)


@pytest.fixture(scope="module", params=[(f, d) for f in ("llama", "gpt2", "gpt_neox") for d in DEVICES],
                ids=lambda p: "-".join(p))
def lm(request) -> LoadedModel:
    family, device = request.param
    return tiny_lm(family, device=device)


def encode(lm: LoadedModel, text: str) -> list[int]:
    return lm.tokenizer(text)["input_ids"]


def test_batched_greedy_decoding_gives_the_solo_tokens_and_probabilities(lm):
    assert can_batch(lm)
    lengths = [12, 3, 9, 1]  # rows finish at different steps
    solo = [generate(lm, encode(lm, p), n, SamplingParams(), alternatives=4)
            for p, n in zip(PROMPTS, lengths, strict=True)]
    rows = [DecodeRow(encode(lm, p), n, SamplingParams(), alternatives=4)
            for p, n in zip(PROMPTS, lengths, strict=True)]
    generate_batch(lm, rows)
    for alone, row in zip(solo, rows, strict=True):
        assert row.output.generated_ids == alone.generated_ids
        assert [s.prob for s in row.output.steps] == pytest.approx([s.prob for s in alone.steps], abs=1e-5)
        assert [s.top_ids.tolist() for s in row.output.steps] == [s.top_ids.tolist() for s in alone.steps]


def test_rows_joining_and_leaving_mid_batch_keep_their_solo_tokens(lm):
    solo = [generate(lm, encode(lm, p), 10, SamplingParams()) for p in PROMPTS]
    rows = [DecodeRow(encode(lm, p), 10, SamplingParams()) for p in PROMPTS]
    decoder = BatchDecoder(lm)
    decoder.add(rows[:2])
    decoder.step()
    decoder.step()
    decoder.add(rows[2:])  # longer prompts join a batch already 3 tokens in
    decoder.step()
    cancelled = decoder.drop_finished([rows[0]])  # a cancel takes one row out
    assert cancelled == [rows[0]] and len(decoder) == 3
    while len(decoder):
        decoder.step()
    assert rows[0].output.generated_ids == solo[0].generated_ids[:4]
    for alone, row in zip(solo[1:], rows[1:], strict=True):
        assert row.output.generated_ids == alone.generated_ids


def test_per_row_sampling_follows_each_rows_seed_and_stop_tokens_end_only_that_row():
    lm = tiny_lm("llama")
    ids = encode(lm, PROMPTS[0])
    greedy = generate(lm, ids, 8, SamplingParams()).generated_ids
    stop_lm = tiny_lm("llama", stop_ids=frozenset({greedy[2]}))
    sampled = SamplingParams(do_sample=True, temperature=1.3, top_k=20, seed=11)
    alone = generate(stop_lm, encode(lm, PROMPTS[1]), 8, sampled).generated_ids
    rows = [DecodeRow(ids, 8, SamplingParams()), DecodeRow(encode(lm, PROMPTS[1]), 8, sampled)]
    generate_batch(stop_lm, rows)
    expected = greedy[: greedy.index(greedy[2]) + 1]
    assert rows[0].output.generated_ids == expected and rows[0].output.stop_reason == "stop_token"
    assert rows[1].output.generated_ids == alone


def test_a_failing_stream_ends_only_its_own_row():
    lm = tiny_lm("llama")

    def broken(index: int, step: object) -> None:
        if index == 2:
            raise ConnectionError("requester gone")

    rows = [DecodeRow(encode(lm, p), 6, SamplingParams()) for p in PROMPTS[:3]]
    rows[1].on_step = broken
    generate_batch(lm, rows)
    assert isinstance(rows[1].error, ConnectionError) and len(rows[1].output.generated_ids) == 3
    assert rows[0].error is None and len(rows[0].output.generated_ids) == 6
    assert rows[2].error is None and len(rows[2].output.generated_ids) == 6


def test_encoder_decoder_models_do_not_batch():
    model, tokenizer = load_tiny_model("t5", None)
    t5 = LoadedModel("t5", "t5", model, tokenizer, torch.device("cpu"), torch.float32, 0.0, frozenset(),
                     family="encoder-decoder")
    assert not can_batch(t5)


def make_job(user: str, request_id: str, batch_key=None, cost: int = 1) -> Job:
    job = Job(request_id, b"id", User(user, "k"), SimpleNamespace(name="generate"), None, None, None, None)
    job.batch_key = batch_key
    job.cost = cost
    return job


def test_jobs_join_a_running_batch_only_while_the_round_robin_head_is_compatible():
    scheduler = Scheduler()
    gen = ("generate", "m")
    scheduler.submit(make_job("alice", "a1", gen))
    assert [j.request_id for j in scheduler.next_batch(max_size=8)] == ["a1"]
    scheduler.submit(make_job("bob", "b1", gen))
    scheduler.submit(make_job("carol", "c1", gen))
    assert [j.request_id for j in scheduler.join_batch(gen, 1)] == ["b1"]  # room for one
    scheduler.submit(make_job("dave", "d1", ("analyze", "m")))
    scheduler.submit(make_job("erin", "e1", gen))
    # carol's generate is next in turn: it joins, and so does erin's behind dave's analysis
    assert [j.request_id for j in scheduler.join_batch(gen, 8)] == ["c1", "e1"]
    scheduler.submit(make_job("alice", "a2", gen))
    # dave's analysis is next in turn now: nothing joins, the batch drains and dave runs
    assert scheduler.join_batch(gen, 8) == []
    assert [j.request_id for j in scheduler.next_batch(max_size=8)] == ["d1"]


def test_other_work_is_taken_between_steps_only_when_it_is_next_in_turn():
    scheduler = Scheduler()
    gen = ("generate", "m")
    scheduler.submit(make_job("alice", "a1", gen))
    assert scheduler.next_batch_unless(gen, 8) == []  # next in turn would join the batch instead
    assert [j.request_id for j in scheduler.next_batch(8)] == ["a1"]  # the running batch
    scheduler.submit(make_job("bob", "b1", ("analyze", "m")))
    scheduler.submit(make_job("carol", "c1", ("analyze", "m")))
    scheduler.submit(make_job("dave", "d1", gen))
    assert scheduler.join_batch(gen, 8) == []  # bob's analysis is next in turn
    assert [j.request_id for j in scheduler.next_batch_unless(gen, 8)] == ["b1", "c1"]
    assert [j.request_id for j in scheduler.join_batch(gen, 8)] == ["d1"]


def test_request_size_and_queued_work_limits():
    scheduler = Scheduler(max_job_cost=100, max_queued_cost_per_user=150)
    with pytest.raises(OperationError) as info:
        scheduler.submit(make_job("alice", "huge", cost=101))
    assert info.value.code.value == "TOO_LARGE"
    scheduler.submit(make_job("alice", "a1", cost=100))
    with pytest.raises(OperationError) as info:
        scheduler.submit(make_job("alice", "a2", cost=60))
    assert info.value.code.value == "QUOTA_EXCEEDED"
    scheduler.submit(make_job("bob", "b1", cost=100))  # bob's own quota is untouched
    assert len(scheduler) == 2


def test_deadline_raises_the_cancel_flag_with_timeout():
    watcher = Deadlines()
    watcher.start()
    try:
        slow, quick = make_job("alice", "slow"), make_job("alice", "quick")
        watcher.watch(slow, 0.05)
        watcher.watch(quick, 30.0)
        deadline = time.monotonic() + 5
        while not slow.cancelled and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert slow.cancelled and slow.cancel_code == "TIMEOUT"
        assert not quick.cancelled
    finally:
        watcher.stop()


def test_rows_past_the_models_positions_are_stopped_before_the_model_runs_them():
    lm = tiny_lm("gpt2")  # learned positions: n_positions = 128
    assert position_limit(lm) == 128 and position_limit(tiny_lm("llama")) is None  # rotary: no hard end
    ok = [encode(lm, p) for p in PROMPTS[:2]]
    solo = [generate(lm, ids, 8, SamplingParams()).generated_ids for ids in ok]
    too_long = DecodeRow([7] * 200, 4, SamplingParams())
    runs_out = DecodeRow([7] * 124, 8, SamplingParams())  # its 6th token would need position 128
    rows = [DecodeRow(ok[0], 8, SamplingParams()), too_long, runs_out, DecodeRow(ok[1], 8, SamplingParams())]
    generate_batch(lm, rows)
    assert isinstance(too_long.error, PositionLimitError) and too_long.output.generated_ids == []
    assert isinstance(runs_out.error, PositionLimitError) and len(runs_out.output.generated_ids) == 5
    assert [rows[0].output.generated_ids, rows[3].output.generated_ids] == solo
    assert rows[0].error is None and rows[3].error is None


def test_a_row_that_breaks_the_shared_pass_fails_alone_in_prefill_and_in_decoding():
    lm = tiny_lm("gpt2")
    ok = [encode(lm, p) for p in PROMPTS[:2]]
    solo = [generate(lm, ids, 8, SamplingParams()).generated_ids for ids in ok]
    too_long = DecodeRow([7] * 200, 4, SamplingParams())
    runs_out = DecodeRow([7] * 124, 8, SamplingParams())
    rows = [DecodeRow(ok[0], 8, SamplingParams()), too_long, runs_out, DecodeRow(ok[1], 8, SamplingParams())]
    decoder = BatchDecoder(lm)
    decoder.max_positions = None  # an unforeseen failure inside the model (as out of memory would be)
    decoder.add(rows)
    decoder.drop_finished()
    while len(decoder):
        decoder.step()
    assert isinstance(too_long.error, IndexError) and too_long.output.generated_ids == []
    assert isinstance(runs_out.error, IndexError) and len(runs_out.output.generated_ids) == 5
    assert [rows[0].output.generated_ids, rows[3].output.generated_ids] == solo
    assert rows[0].error is None and rows[3].error is None


class RecordingOutbox:
    """Keeps every frame the jobs send, decoded, in order (the loop's ROUTER is not part of this test)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict]] = []

    def send(self, identity: bytes, frames: list, final: bool = False) -> None:
        raw = split_frames(frames)
        header = raw.header()
        self.events.append((header["id"], header["event"], raw.content()))


@one_shot("test-one-pass")
def add_one_together(ctx, jobs):
    """A teacher-forced pass stand-in: fails as a whole when any input is negative, like a bad row would."""
    if any(job.params < 0 for job in jobs):
        raise ValueError("a negative input broke the joint pass")
    return [{"value": job.params + 1, "batch": len(jobs)} for job in jobs]


def test_one_pass_batches_run_together_and_a_failing_job_fails_alone():
    scheduler, outbox = Scheduler(), RecordingOutbox()
    ctx = RuntimeContext(config=DaemonConfig(), models=None, store=None, scheduler=scheduler, users=None)
    jobs = []
    for user, request_id, value in (("alice", "a", 1), ("bob", "b", -5), ("carol", "c", 10)):
        job = Job(request_id, b"id", User(user, "k"), SimpleNamespace(name="analyze"), value, outbox, None)
        job.batch_key = ("test-one-pass", "m")
        ctx.inflight.add(job)
        scheduler.submit(job)
        jobs.append(job)
    worker = Worker(JobRunner(ctx), max_batch=8)
    worker.start()
    deadline = time.monotonic() + 10
    while not all(job.finished for job in jobs) and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    worker.stop()
    terminal = {rid: (event, content) for rid, event, content in outbox.events if event in ("result", "error")}
    assert terminal["a"] == ("result", {"value": 2, "batch": 1})  # retried alone after the joint pass failed
    assert terminal["c"] == ("result", {"value": 11, "batch": 1})
    assert terminal["b"][0] == "error" and terminal["b"][1]["code"] == "INTERNAL"
    assert len([e for e in outbox.events if e[1] in ("result", "error")]) == 3  # one answer each
    assert len(ctx.inflight) == 0


def test_one_pass_batches_share_one_call_when_all_inputs_are_good():
    scheduler, outbox = Scheduler(), RecordingOutbox()
    ctx = RuntimeContext(config=DaemonConfig(), models=None, store=None, scheduler=scheduler, users=None)
    jobs = []
    for index in range(4):
        job = Job(f"r{index}", b"id", User(f"user{index}", "k"), SimpleNamespace(name="analyze"), index,
                  outbox, None)
        job.batch_key = ("test-one-pass", "m")
        scheduler.submit(job)
        jobs.append(job)
    worker = Worker(JobRunner(ctx), max_batch=8)
    worker.start()
    deadline = time.monotonic() + 10
    while not all(job.finished for job in jobs) and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    worker.stop()
    results = {rid: content for rid, event, content in outbox.events if event == "result"}
    assert results == {f"r{i}": {"value": i + 1, "batch": 4} for i in range(4)}


class BrokenBatch:
    """A batch runner with a bug outside any job's own work (its bookkeeping raises)."""

    def __init__(self, ctx, key) -> None:
        self.jobs: list[Job] = []

    def admit(self, jobs: list[Job]) -> list[Outcome]:
        self.jobs += jobs
        return []

    def step(self) -> list[Outcome]:
        return []

    def active(self) -> int:
        raise RuntimeError("a bug in the batch's bookkeeping")

    def drain(self) -> list[Job]:
        return self.jobs


register_batch("test-broken")(BrokenBatch)


def _submit(ctx: RuntimeContext, jobs: list[Job]) -> None:
    for job in jobs:
        ctx.inflight.add(job)
        ctx.scheduler.submit(job)


def _wait_answered(jobs: list[Job]) -> None:
    deadline = time.monotonic() + 10
    while not all(job.finished for job in jobs) and time.monotonic() < deadline:
        threading.Event().wait(0.01)


def _run_until_answered(ctx: RuntimeContext, jobs: list[Job]) -> Worker:
    _submit(ctx, jobs)
    worker = Worker(JobRunner(ctx), max_batch=8)
    worker.start()
    _wait_answered(jobs)
    return worker


def test_a_bug_in_the_worker_fails_its_jobs_with_internal_and_the_worker_goes_on():
    scheduler, outbox = Scheduler(), RecordingOutbox()
    ctx = RuntimeContext(config=DaemonConfig(), models=None, store=None, scheduler=scheduler, users=None)
    broken = Job("broken", b"id", User("alice", "k"), SimpleNamespace(name="analyze"), 1, outbox, None)
    broken.batch_key = ("test-broken", "m")
    worker = _run_until_answered(ctx, [broken])
    later = Job("later", b"id", User("bob", "k"), SimpleNamespace(name="analyze"), 41, outbox, None)
    later.batch_key = ("test-one-pass", "m")
    _submit(ctx, [later])  # the same worker, still alive, serves the next job
    _wait_answered([later])
    alive = worker.is_alive()
    worker.stop()
    terminal = {rid: (event, content) for rid, event, content in outbox.events if event in ("result", "error")}
    assert terminal["broken"][0] == "error" and terminal["broken"][1]["code"] == "INTERNAL"
    assert "bookkeeping" in terminal["broken"][1]["message"]
    assert terminal["later"] == ("result", {"value": 42, "batch": 1})
    assert alive
    assert len(ctx.inflight) == 0


def test_a_result_the_wire_cannot_carry_answers_internal_instead_of_nothing():
    scheduler, outbox = Scheduler(), RecordingOutbox()
    ctx = RuntimeContext(config=DaemonConfig(), models=None, store=None, scheduler=scheduler, users=None)
    operation = SimpleNamespace(name="odd", handler=lambda ctx, job, params: {"value": object()})
    job = Job("odd", b"id", User("alice", "k"), operation, None, outbox, None)
    _run_until_answered(ctx, [job]).stop()
    terminal = [(event, content) for rid, event, content in outbox.events if event in ("result", "error")]
    assert len(terminal) == 1 and terminal[0][0] == "error" and terminal[0][1]["code"] == "INTERNAL"
