"""The client's Progress from daemon events, the tqdm bar it feeds, and when a bar is drawn at all."""

from __future__ import annotations

import pytest

from ecco_client.progress import Progress, ProgressTracker, TqdmBar, bar_wanted


def test_events_become_progress() -> None:
    tracker = ProgressTracker("generate", new_tokens=3)
    queued = tracker.update("queued", {"position": 2, "queue_length": 5})
    assert queued == Progress("generate", "queued", queue_position=2, queue_length=5)
    assert queued.describe() == "queued 2 of 5" and queued.fraction is None
    counted = tracker.update("progress", {"stage": "attribution", "done": 3, "total": 12, "unit": "steps",
                                          "method": "integrated_gradients", "eta_s": 1.5, "elapsed_s": 0.5,
                                          "unknown": "ignored"})
    assert counted is not None and counted.fraction == 0.25 and counted.eta_s == 1.5
    assert counted.describe() == "attribution (integrated_gradients)"
    assert [tracker.update("token", {}).done for _ in range(2)] == [1, 2]
    assert tracker.update("accepted", {"op": "generate"}) is None


def test_the_bar_follows_each_counted_stage(capsys: pytest.CaptureFixture[str]) -> None:
    bar = TqdmBar("ecco analyze", delay=0)
    bar(Progress("analyze", "queued", queue_position=1, queue_length=1))
    bar(Progress("analyze", "attribution", 0, 10, "steps", "integrated_gradients"))
    bar(Progress("analyze", "attribution", 10, 10, "steps", "integrated_gradients"))
    bar.close()
    drawn = capsys.readouterr().err
    assert "ecco analyze: queued 1 of 1" in drawn
    assert "ecco analyze: attribution (integrated_gradients)" in drawn and "10/10" in drawn


def test_bars_are_drawn_where_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert bar_wanted(True) and not bar_wanted(False)
    monkeypatch.setenv("ECCO_PROGRESS", "0")
    assert not bar_wanted(None)
    monkeypatch.delenv("ECCO_PROGRESS")
    assert not bar_wanted(None)  # pytest's stderr is no terminal, and no notebook runs
