"""The views on the real SmolLM2-135M-Instruct: data from the daemon's analyses, drawn in Chromium.

Integration tier (marker `integration`): the embedded default model is fetched and converted once into
the model cache. A real model gives meaningful numbers, so besides the DOM this checks that what the
views show agrees with the model (" Paris" is likely after "The capital of France is").
"""

from __future__ import annotations

import pytest

from ecco_client.render import render_html, to_plain

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def smol_views() -> dict:
    from ecco_daemon.models import load_model
    from tests.renderer.view_data import ViewBuilder

    lm = load_model("smollm2-135m", attn_implementation="eager", progress=False)
    views = ViewBuilder(lm.model, lm.tokenizer).all_views()
    return {name: to_plain(data) for name, data in views.items()}


def test_smollm2_probability_and_layers(open_html, smol_views):
    prob = smol_views["probability"]
    paris = next(i for i, t in enumerate(prob["tokens"]) if t["text"] == " Paris")
    assert prob["probs"][paris] > 0.2  # the real model expects Paris
    loaded = open_html(render_html("probability", prob, standalone=True))
    page = loaded.page
    assert page.locator(".ecco-token").count() == len(prob["tokens"])
    assert page.locator('.ecco-token[data-kind="input"]').count() == sum(t["is_input"] for t in prob["tokens"])
    page.locator(f'.ecco-token[data-position="{paris}"]').hover()
    assert "Paris" in page.locator(".ecco-tooltip table.ecco-alts").inner_text()
    loaded.screenshot("smollm2-probability")
    loaded.assert_clean()

    layers = smol_views["layer_predictions"]
    loaded = open_html(render_html("layer_predictions", layers, standalone=True))
    assert loaded.page.locator("tr.ecco-layer-row").count() == 30
    loaded.screenshot("smollm2-layer-predictions")
    loaded.assert_clean()


def test_smollm2_all_views_in_tabs(open_html, smol_views):
    names = ["probability", "saliency", "layer_predictions", "rankings", "rankings_watch", "nmf", "attention"]
    tabs = [{"title": n.replace("_", " "), "view": n, "data": smol_views[n]} for n in names]
    loaded = open_html(render_html("tabs", {"tabs": tabs}, standalone=True), width=1200)
    page = loaded.page
    assert page.get_by_role("tab").count() == len(names)
    for name in names:
        page.locator(f'button.ecco-tab[data-view="{name}"]').click()
        panel = page.locator(f'.ecco-panel[data-view="{name}"]')
        assert panel.is_visible() and panel.locator(".ecco-legend").count() >= 1
        loaded.screenshot(f"smollm2-tab-{name}")
    ranks = smol_views["rankings"]["ranks"]
    assert page.locator('.ecco-panel[data-view="rankings"] table.ecco-heat td').count() == len(ranks) * len(ranks[0])
    loaded.assert_clean()
