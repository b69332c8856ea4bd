"""Progress of an analysis: done of a total known up front (blocks x steps, tokens, targets), paced events
with an ETA, and the same results as without a listener."""

from __future__ import annotations

import numpy as np

from ecco_daemon.analysis import service
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.models.tokens import encode_prompt
from ecco_daemon.server.pacing import ProgressPacer
from tests.tiny_models import load_tiny_model

TEXT = "The quick brown fox jumps over the lazy dog."


def _run(options: AnalysisOptions, events: list[tuple]):
    model, tokenizer = load_tiny_model("llama")
    ids = encode_prompt(tokenizer, TEXT)

    def sink(stage: str, done: int, total: int, **extra: object) -> None:
        events.append((stage, done, total, extra))

    return service.analyze(model, tokenizer, ids, options, on_progress=sink), len(ids)


def test_integrated_gradients_counts_blocks_times_steps() -> None:
    events: list[tuple] = []
    run, n_tokens = _run(AnalysisOptions(attribution=("integrated_gradients",), steps=6, block_size=3,
                                         step_batch=4), events)
    n_blocks = -(-(n_tokens - 1) // 3)
    totals = {total for _, _, total, _ in events}
    assert totals == {n_blocks * 6}
    done = [d for _, d, _, _ in events]
    assert done[0] == 0 and done[-1] == n_blocks * 6 and done == sorted(done)
    assert {e["unit"] for *_, e in events} == {"steps"}
    assert "integrated_gradients" in run.attributions


def test_every_method_counts_towards_one_total() -> None:
    events: list[tuple] = []
    _, n_tokens = _run(AnalysisOptions(attribution=("grad_x_input", "occlusion"), block_size=4), events)
    assert {total for _, _, total, _ in events} == {(n_tokens - 1) + n_tokens}
    methods = [e["method"] for *_, e in events]
    assert methods[0] == "grad_x_input" and methods[-1] == "occlusion"
    assert events[-1][1] == events[-1][2]


def test_progress_changes_nothing_computed() -> None:
    options = AnalysisOptions(attribution=("integrated_gradients",), steps=4, block_size=3)
    with_progress, _ = _run(options, [])
    model, tokenizer = load_tiny_model("llama")
    without = service.analyze(model, tokenizer, encode_prompt(tokenizer, TEXT), options)
    np.testing.assert_array_equal(with_progress.attributions["integrated_gradients"].raw,
                                  without.attributions["integrated_gradients"].raw)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pacer_adds_an_eta_and_skips_events_closer_than_its_interval() -> None:
    clock = FakeClock()
    pacer = ProgressPacer(min_interval_s=0.25, clock=clock)
    first = pacer.stamp("attribution", 0, 10, {"method": "gradient"})
    assert first is not None and first["eta_s"] is None and first["elapsed_s"] == 0
    clock.now += 1.0
    second = pacer.stamp("attribution", 2, 10, {"method": "gradient"})
    assert second is not None and second["eta_s"] == 4.0 and second["elapsed_s"] == 1.0
    clock.now += 0.1
    assert pacer.stamp("attribution", 3, 10, {"method": "gradient"}) is None  # too soon
    assert pacer.stamp("attribution", 3, 10, {"method": "occlusion"}) is not None  # a new part
    clock.now += 0.01
    assert pacer.stamp("attribution", 10, 10, {"method": "occlusion"}) is not None  # the last one
    assert pacer.stamp("loading", None, None, {}) == {"stage": "loading", "done": None, "total": None}
