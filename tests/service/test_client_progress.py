"""Progress reaches the Python client from the real daemon: on_progress sees the queue position and done
of total with an ETA; the async client's views are coroutines as the README says."""

from __future__ import annotations

import threading

import pytest

import ecco_client
import ecco_client.aio
from ecco_client.progress import Progress


@pytest.fixture()
def client(daemon):
    with ecco_client.connect(connection_file=daemon.connection_file, timeout=30, progress=False) as c:
        yield c


def test_on_progress_counts_integrated_gradients_to_its_total(client):
    seen: list[Progress] = []
    out = client.model().analyze("The quick brown fox jumps over the lazy dog", ["integrated_gradients"],
                                 steps=8, on_progress=seen.append)
    counted = [p for p in seen if p.stage == "attribution"]
    assert counted, [p.stage for p in seen]
    total = counted[0].total
    assert total and total % 8 == 0 and all(p.total == total for p in counted)
    assert counted[0].done == 0 and counted[-1].done == total
    assert [p.done for p in counted] == sorted(p.done for p in counted)
    assert counted[-1].unit == "steps" and counted[-1].method == "integrated_gradients"
    assert counted[-1].eta_s == 0 and counted[-1].elapsed_s is not None
    assert out.analysis["attribution_methods"] == ["integrated_gradients"]


def test_generation_progress_counts_tokens_then_the_analysis(client):
    seen: list[Progress] = []
    client.model().generate("Once upon", generate=4, attribution=["gradient"], on_progress=seen.append)
    generating = [p for p in seen if p.stage == "generating"]
    assert [p.done for p in generating] == [1, 2, 3, 4] and {p.total for p in generating} == {4}
    assert [p for p in seen if p.stage == "attribution"][-1].fraction == 1.0


def test_the_queue_position_reaches_the_caller(client):
    long_run = threading.Thread(target=lambda: client.model().analyze(
        "a b c d e f g h i j k l m n o p", ["integrated_gradients"], steps=400))
    long_run.start()
    try:
        seen: list[Progress] = []
        client.model().analyze("hello there", on_progress=seen.append)
    finally:
        long_run.join()
    queued = [p for p in seen if p.stage == "queued"]
    assert queued and queued[-1].queue_position == 1 and queued[-1].describe().startswith("queued 1")


async def test_the_async_clients_views_are_coroutines(daemon):
    client = await ecco_client.aio.connect(connection_file=daemon.connection_file, timeout=30, progress=False)
    try:
        lm = client.model()
        out = await lm.analyze("The quick brown fox", ["grad_x_input"])
        lens = await out.layer_predictions(position=2, topk=3)
        assert lens.view == "layer_predictions"
        assert (await out.rankings_watch([5, 6], position=2)).view == "rankings_watch"
        assert (await out.primary_attributions()).view == "saliency"
        nmf = await out.run_nmf(n_components=2)
        assert nmf.factors.shape[0] == 2
        assert out.token_probabilities().view == "probability"  # from the first reply: no daemon, no await
        generated = await lm.generate("Once", generate=2, analyze=True)
        assert (await generated.rankings()).view == "rankings"
    finally:
        await client.close()
