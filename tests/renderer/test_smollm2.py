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


# ---- every view from the public client, on a live daemon serving SmolLM2 loaded the default way ----

PROMPT = "The capital of France is"
CLIENT_METHODS = ["grad_x_input", "gradient", "integrated_gradients", "occlusion"]


@pytest.fixture(scope="module")
def smol_client(smollm2_daemon):
    import ecco_client

    with ecco_client.connect(connection_file=smollm2_daemon.connection_file, timeout=600) as client:
        yield client


@pytest.fixture(scope="module")
def smol_output(smol_client):
    return smol_client.model("smollm2-135m").generate(PROMPT, generate=8, attribution=CLIENT_METHODS, steps=16)


def _cell(open_html, spec, width: int = 1100):
    loaded = open_html(f"<html><body>{spec._repr_html_()}</body></html>", width=width)
    assert loaded.page.locator(".ecco-error").count() == 0, loaded.page.locator(".ecco-error").all_inner_texts()
    return loaded


def test_smollm2_every_view_from_the_client(open_html, smol_client, smol_output):
    out = smol_output
    assert out.generated_tokens[0] == " Paris"
    paris = out.n_input_tokens
    last = len(out.tokens) - 1

    loaded = _cell(open_html, out.token_probabilities())
    loaded.page.locator(f'.ecco-token[data-position="{paris}"]').hover()
    assert "generated" in loaded.page.locator(".ecco-tooltip").inner_text()
    loaded.screenshot("smollm2-client-probability")
    loaded.assert_clean()

    for method in CLIENT_METHODS:
        for style in ("minimal", "detailed"):
            loaded = _cell(open_html, out.primary_attributions(method, style=style))
            loaded.page.locator(f'.ecco-token[data-position="{paris}"]').hover()
            loaded.screenshot(f"smollm2-client-saliency-{method}-{style}")
            loaded.assert_clean()

    foil = smol_client.model("smollm2-135m").encode_tokens(" Berlin", add_special_tokens=False)["input_ids"][0]
    contrast = smol_client.model("smollm2-135m").generate(PROMPT, generate=8, attribution=["contrastive"],
                                                          foils=[int(foil[-1])])
    loaded = _cell(open_html, contrast.primary_attributions("contrastive", style="detailed"))
    loaded.page.locator(f'.ecco-token[data-position="{paris}"]').hover()
    assert "rather than" in loaded.page.locator(".ecco-details").inner_text()
    loaded.screenshot("smollm2-client-saliency-contrastive")
    loaded.assert_clean()

    loaded = _cell(open_html, out.layer_predictions(position=paris, topk=5))
    loaded.screenshot("smollm2-client-layer-predictions-paris")
    loaded.page.locator(f'.ecco-token[data-position="{last}"]').click()
    loaded.screenshot("smollm2-client-layer-predictions-last")
    loaded.assert_clean()

    loaded = _cell(open_html, out.rankings())
    loaded.screenshot("smollm2-client-rankings")
    loaded.assert_clean()

    watch = out.rankings_watch([" Paris", " Berlin", " London", " the"], position=paris)
    loaded = _cell(open_html, watch)
    loaded.screenshot("smollm2-client-rankings-watch")
    loaded.assert_clean()

    loaded = _cell(open_html, out.run_nmf(n_components=4).explore())
    loaded.page.locator(".ecco-factor").nth(1).hover()
    loaded.screenshot("smollm2-client-nmf")
    loaded.assert_clean()

    attention = out.attention()  # every layer and head, from a model loaded without eager attention
    assert len(attention.data["layers"]) == 30 and len(attention.data["heads"]) == 9
    loaded = _cell(open_html, attention)
    loaded.page.get_by_label("Layer").select_option("10")
    loaded.page.locator(f'.ecco-left .ecco-attn-row[data-position="{paris}"]').click()
    loaded.screenshot("smollm2-client-attention-lines")
    loaded.page.get_by_role("button", name="Heat").click()
    loaded.screenshot("smollm2-client-attention-heat")
    loaded.assert_clean()
