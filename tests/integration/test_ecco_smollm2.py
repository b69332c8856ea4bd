"""Ecco's documented flows through ``from ecco_client import ecco`` on the real SmolLM2-135M-Instruct.

The same flows as the tiny-model tier (tests/ecco_flows.py), with only the model name changed.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecco_client import ecco
from tests import ecco_flows

pytestmark = pytest.mark.integration
MODEL = "smollm2-135m"


@pytest.fixture(scope="module", autouse=True)
def users_connection_file(smollm2_daemon):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ECCO_CONNECTION_FILE", str(smollm2_daemon.connection_file))
        yield


def test_layer_predictions_end_on_paris():
    run = ecco_flows.token_scores_and_layer_predictions(ecco, MODEL)
    assert run["output"].output.tokens[run["output"].n_input_tokens] == " Paris"
    assert len(run["every_layer"]) == 30 and run["every_layer"][-1][0]["token"] == " Paris"
    assert run["last_layer"][0][0]["token"] == " Paris" and float(run["last_layer"][0][0]["prob"]) > 0.5


def test_rankings_watch_on_ids_from_the_tokenizer():
    run = ecco_flows.rankings_watch_on_tokenizer_ids(ecco, MODEL)
    ranks = run["watched"]["rankings"]
    assert ranks.shape == (30, 3) and ranks[-1, 2] == 1
    assert run["lm"].tokenizer.decode(run["watch"]) == " is are"


def test_primary_attributions_ig_and_grad_x_input():
    run = ecco_flows.primary_attributions_both_styles(ecco, MODEL)
    for row in run["data"]["attributions"]:
        assert sum(row) == pytest.approx(1.0, abs=1e-3)
    assert set(run["attribution"]) == {"ig", "grad_x_input"}


def test_neuron_factors():
    run = ecco_flows.neuron_factors(ecco, MODEL)
    assert run["every_layer"].layers == list(range(30)) and run["some_layers"].layers == [0]
    assert run["activations"]["decoder"].shape[:3] == (1, 30, 1536)


def test_cca_between_embeddings_and_each_layer():
    run = ecco_flows.cca_embeddings_to_layers(ecco, MODEL)
    scores = np.asarray(run["scores"])
    assert run["n_layers"] == 30 and np.all((scores > 0) & (scores <= 1 + 1e-6))
    assert run["same"] == pytest.approx(1.0, abs=1e-4)
