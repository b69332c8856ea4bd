"""The blocking client is the async core run on a loop thread: what the bridge adds, against the real daemon.

Streams keep their result, closing or cancelling a caller cancels the daemon's job, objects come back
as their blocking twins, and a blocking call from the loop's own thread fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

import ecco_client
import ecco_client.aio


@pytest.fixture()
def client(daemon):
    with ecco_client.connect(connection_file=daemon.connection_file, timeout=10) as c:
        yield c


def running_generations(status: dict) -> list[str]:
    return [job["id"] for job in status["queue"]["running"] if job["op"] == "generate"]


def poll(what: str, check: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_stream_yields_tokens_and_returns_the_output(client):
    lm = client.model()
    assert lm.client is client

    def consume():
        return (yield from lm.stream("hello world", generate=4))

    seen = []
    gen = consume()
    try:
        while True:
            seen.append(next(gen))
    except StopIteration as stop:
        out = stop.value
    assert isinstance(out, ecco_client.Output) and out.client is client
    assert [t["token_id"] for t in seen] == out.token_ids[out.n_input_tokens:].tolist()


def test_closing_a_stream_early_cancels_the_generation(client):
    tokens = client.model().stream("a long story", generate=1000)
    next(tokens)
    assert running_generations(client.status())
    tokens.close()
    poll("the generation to be cancelled", lambda: not running_generations(client.status()))


def test_outputs_ask_the_daemon_through_the_blocking_client(client):
    out = client.model().analyze("the cat sat on the mat", attribution=["gradient"])
    assert out.client is client
    assert out.layer_predictions(position=2, topk=3).view == "layer_predictions"


def test_a_blocking_call_from_a_callback_fails_instead_of_hanging(client):
    with pytest.raises(RuntimeError, match="loop thread"):
        client.model().generate("x", generate=2, on_token=lambda token: client.ping())
    assert client.ping() < 1.0


def test_a_closed_client_says_so(daemon):
    client = ecco_client.connect(connection_file=daemon.connection_file)
    client.close()
    with pytest.raises(ecco_client.DaemonUnavailable, match="closed"):
        client.ping()


async def test_cancelling_an_async_caller_cancels_the_daemon_job(daemon):
    client = await ecco_client.aio.connect(connection_file=daemon.connection_file)
    try:
        started = asyncio.Event()
        task = asyncio.ensure_future(
            client.model().generate("a long story", generate=1000, on_token=lambda token: started.set()))
        await asyncio.wait_for(started.wait(), 20)
        assert running_generations(await client.status())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline = time.monotonic() + 20
        while running_generations(await client.status()):
            assert time.monotonic() < deadline, "the generation kept running"
            await asyncio.sleep(0.05)
    finally:
        await client.close()
