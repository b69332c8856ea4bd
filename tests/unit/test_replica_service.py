"""The replica's side of `serve --ray`, in process and without Ray: tickets in, replies out.

Two routes to the same numbers must agree: a generation decoded in a replica's batch and the same one run
alone; a view computed from a run that crossed a process boundary (pickled, model left behind) and the
view of the original.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import uuid
from typing import Any

import pytest

from ecco_daemon import __version__, handlers  # noqa: F401  (registers the operations and batch runners)
from ecco_daemon.config import DaemonConfig
from ecco_daemon.handlers.analyze import StoredRun
from ecco_daemon.runtime.replica import ReplicaService
from ecco_daemon.runtime.replica_wire import Reply, Ticket
from ecco_daemon.server.job import Job
from ecco_daemon.server.registry import OPERATIONS
from ecco_daemon.server.users import User


@pytest.fixture(scope="module")
def service(tiny_llama, tmp_path_factory) -> ReplicaService:
    config = DaemonConfig(state_dir=tmp_path_factory.mktemp("replica"))
    return ReplicaService(config, {"spec": str(tiny_llama), "name": "tiny", "device": "cpu"}, __version__)


def ticket(service: ReplicaService, op: str, params: dict[str, Any], user: str = "alice") -> Ticket:
    """A request parsed and prepared as the front door does it, then turned into what crosses to a replica."""
    operation = OPERATIONS.get(op)
    assert operation is not None
    job = Job(uuid.uuid4().hex, b"", User(user, "", "user"), operation, operation.parse(params), None, None)  # type: ignore[arg-type]
    job.params.prepare(service.ctx, job)
    return Ticket.of(job)


def merged(replies: list[Reply]) -> Reply:
    out = Reply()
    for reply in replies:
        assert reply.failed is None, reply.failed
        out.puts += reply.puts
        out.events += reply.events
        out.outcomes += reply.outcomes
    return out


def run_batch(service: ReplicaService, tickets: list[Ticket]) -> Reply:
    batch_id = uuid.uuid4().hex
    replies = [service.admit(batch_id, tickets[0].batch_key, tickets)]
    while len(merged(replies).outcomes) < len(tickets):
        replies.append(service.step(batch_id))
    return merged(replies)


def test_a_batch_on_the_replica_gives_each_job_its_solo_result_events_and_stored_result(service):
    prompts = ["the cat sat", "Hello world", "The capital of France is"]
    tickets = [ticket(service, "generate", {"prompt": p, "generate": 5, "alternatives": 2}) for p in prompts]
    assert tickets[0].batch_key == ("generate", "tiny") and tickets[0].model == "tiny"
    reply = run_batch(service, tickets)
    for t in tickets:
        (kind, result), = [o for key, o in reply.outcomes if key == t.key]
        assert kind == "result"
        streamed = [e.content["token_id"] for e in reply.events if e.key == t.key and e.event == "token"]
        assert streamed == result["token_ids"][result["n_input_tokens"]:].tolist()
        put, = [p for p in reply.puts if p.result_id == result["result_id"]]
        assert (put.user, put.kind) == ("alice", "generation")
        solo = merged(list(service.run(t)))  # the same request alone, on the solo path
        assert solo.outcomes[0][1][1]["token_ids"].tolist() == result["token_ids"].tolist()


def test_a_stored_run_crosses_without_its_model_and_views_of_it_agree(service):
    reply = merged(list(service.run(ticket(service, "analyze", {"text": "one two three four five"}))))
    kind, result = reply.outcomes[0][1]
    assert kind == "result" and any(e.event == "progress" for e in reply.events)
    put, = reply.puts
    assert put.result_id == result["result_id"] and put.kind == "analysis"
    crossed: StoredRun = pickle.loads(pickle.dumps(put.value))
    assert crossed.run.arch is None and len(pickle.dumps(put.value)) < 200_000  # no model weights inside
    view = {"result_id": put.result_id, "view": "layer_predictions", "params": {"position": 3, "topk": 3}}
    answers = [view_on(service, view, stored)["data"] for stored in (put.value, crossed)]
    assert pickle.dumps(answers[1]) == pickle.dumps(answers[0])  # arrays inside: compared byte for byte


def view_on(service: ReplicaService, params: dict[str, Any], stored: StoredRun) -> dict[str, Any]:
    """A view job as the front door ships it: the stored run travels with the request."""
    operation = OPERATIONS.get("view")
    request = operation.parse(params)
    request.stored = stored
    job = Job("v-" + uuid.uuid4().hex, b"", User("alice", "", "user"), operation, request, None, None,  # type: ignore[arg-type]
              model=stored.model)
    (_, (kind, answer)), = merged(list(service.run(Ticket.of(job)))).outcomes
    assert kind == "result", answer
    return answer


def test_a_cancel_that_arrives_first_still_cancels_the_job(service):
    t = ticket(service, "generate", {"prompt": "the cat", "generate": 50})
    service.cancel([(t.user, t.request_id, "TIMEOUT")])
    reply = run_batch(service, [t])
    assert reply.outcomes == [(t.key, ("cancelled", None))]


def test_a_replica_of_another_version_loads_nothing_and_refuses_all_work(tiny_llama, tmp_path):
    refusing = ReplicaService(DaemonConfig(state_dir=tmp_path), {"spec": str(tiny_llama), "name": "tiny"}, "9.9.9")
    hello = refusing.hello()
    assert hello["version"] == __version__ and "9.9.9" in hello["refusal"] and "version mismatch" in hello["refusal"]
    assert refusing.admit("b", ("generate", "tiny"), []).failed["message"] == hello["refusal"]
    assert refusing.step("b").failed["message"] == hello["refusal"]
    fake = Ticket("alice", "user", "r", "generate", None, None, "tiny", 1)
    assert [r.failed["message"] for r in refusing.run(fake)] == [hello["refusal"]]


def test_without_ray_the_daemon_never_imports_it():
    code = ("import sys, ecco_daemon.cli, ecco_daemon.daemon, ecco_daemon.handlers, ecco_daemon.runtime.executor, "
            "ecco_daemon.runtime.replica; assert 'ray' not in sys.modules, 'ray was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
