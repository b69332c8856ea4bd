"""Output objects from the real daemon draw themselves: Jupyter fragments and exported HTML in Chromium."""

from __future__ import annotations

import numpy as np
import pytest

import ecco_client


@pytest.fixture(scope="module")
def output(daemon):
    with ecco_client.connect(connection_file=daemon.connection_file, timeout=30) as client:
        out = client.model().generate("the cat sat", generate=4, attribution=["grad_x_input", "gradient"])
        yield out


def test_exported_html_draws_every_view_offline(output, open_html, tmp_path):
    path = output.to_html(tmp_path / "output.html")
    loaded = open_html(path.read_text())
    page = loaded.page
    roots = page.locator("div.ecco-output > .ecco-root")
    assert roots.count() == 5  # probability, saliency, layer predictions, rankings, neuron factors
    assert [roots.nth(i).get_attribute("data-view") for i in range(5)] == [
        "probability", "saliency", "layer_predictions", "rankings", "nmf"]
    n_tokens = len(output.tokens)
    assert roots.first.locator(".ecco-token").count() == n_tokens
    saliency = roots.nth(1)
    assert saliency.locator('[aria-label="Method"] button').count() == 2
    last = saliency.locator(f'.ecco-token[data-position="{n_tokens - 1}"]')
    last.hover()
    scores = saliency.locator(".ecco-token").evaluate_all("els => els.map(e => e.dataset.score)")
    assert sum(1 for s in scores if s) == n_tokens - 1
    loaded.screenshot("output-export")
    loaded.assert_clean()


def test_jupyter_fragments_of_each_method_render(output, open_html):
    specs = {
        "tabs": output,
        "layer_predictions": output.layer_predictions(position=len(output.tokens) - 1, topk=3),
        "rankings_watch": output.rankings_watch([int(output.token_ids[-1])], position=len(output.tokens) - 1),
        "nmf": output.run_nmf(n_components=2),
        "saliency": output.primary_attributions("gradient", style="detailed"),
    }
    for name, spec in specs.items():
        html = spec._repr_html_()
        assert "<script src" not in html and "require(" not in html
        loaded = open_html(f"<html><body>{html}</body></html>")
        assert loaded.page.locator("div.ecco-output > .ecco-root").count() == 1, name
        loaded.screenshot(f"output-{name}")
        loaded.assert_clean()
    json_form = output.to_json()
    assert [v["view"] for v in json_form["views"]] == ["probability", "saliency", "rankings"]
    assert np.isclose(sum(json_form["views"][1]["data"]["methods"][0]["values"][-1]), 1.0, atol=1e-4)
