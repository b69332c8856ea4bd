"""The real SmolLM2-135M-Instruct served by the real daemon."""

from __future__ import annotations

import numpy as np
import pytest

import ecco_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lm(smollm2_daemon):
    with ecco_client.connect(connection_file=smollm2_daemon.connection_file, timeout=30) as client:
        yield client.model("smollm2-135m")


def test_greedy_continuation_of_the_capital_of_france_names_paris(lm):
    streamed = []
    out = lm.generate("The capital of France is", generate=5, on_token=streamed.append)
    assert "Paris" in out.generated_text
    first = streamed[0]
    assert first["token"] == " Paris" and first["alternatives"][0]["token"] == " Paris"
    assert 0.5 < first["prob"] <= 1.0
    assert np.all((out.probabilities > 0) & (out.probabilities <= 1))


def test_generation_stops_at_the_instruct_end_of_turn(lm):
    chat = "<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n"
    out = lm.generate(chat, generate=60)
    assert out.stop_reason == "stop_token"
    assert out.tokens[-1] in {"<|im_end|>", "<|endoftext|>"}
