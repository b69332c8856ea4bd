"""The README's Python snippets on SmolLM2 itself, where their words are the model's: ' Paris' is the
first generated token of "The capital of France is", and the watched words are single tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon_process import DaemonProcess
from tests.readme_blocks import run_readme

pytestmark = pytest.mark.integration


def test_the_readmes_python_runs_on_smollm2(smollm2_daemon: DaemonProcess, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECCO_CONNECTION_FILE", str(smollm2_daemon.connection_file))
    monkeypatch.chdir(tmp_path)
    namespace = run_readme()
    out = namespace["out"]
    assert out.generated_tokens[0] == " Paris"
    assert out.tokens[namespace["paris"]] == " Paris"
    watched = out.rankings_watch(watch=[" Paris", " London"], position=namespace["paris"]).data
    assert [w["text"] for w in watched["watch"]] == [" Paris", " London"]
    assert int(watched["ranks"][-1][0]) == 1  # the last layer ranks the generated token first
    assert (tmp_path / "paris.html").stat().st_size > 0
