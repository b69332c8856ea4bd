"""Every view drawn in Chromium from what the public client API returns, on a live daemon with a tiny model.

Why: the fixture tests (test_views.py) feed the renderer data built in the test; these feed it what a
user's ``Output`` really produces, so a mismatch between the client's data and protocol/VIEWS.md shows
up here. The tiny Llama is loaded the default way (sdpa attention): attention must still work. Each page
must log no error and request nothing but itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import ecco_client
from ecco_client.render.html import ViewSpec

PROMPT = "The capital of France is"
METHODS = ["grad_x_input", "gradient", "integrated_gradients", "occlusion"]
N_NEW = 4


@pytest.fixture(scope="module")
def output(daemon_client):
    return daemon_client.model().generate(PROMPT, generate=N_NEW, attribution=METHODS, steps=4)


@pytest.fixture(scope="module")
def contrastive(daemon_client):
    foil = daemon_client.model().encode_tokens(" Berlin", add_special_tokens=False)["input_ids"][0]
    assert len(foil) == 1
    out = daemon_client.model().generate(PROMPT, generate=N_NEW, attribution=["contrastive"], foils=[int(foil[0])])
    return out, int(foil[0])


def show(open_html, spec: ViewSpec, **kwargs: Any):
    """The view as a Jupyter cell shows it: its fragment in a page."""
    html = spec._repr_html_()
    assert "<script src" not in html
    loaded = open_html(f"<html><body>{html}</body></html>", **kwargs)
    assert loaded.page.locator(".ecco-error").count() == 0, loaded.page.locator(".ecco-error").all_inner_texts()
    return loaded


def rects(page, selector: str = ".ecco-token") -> list[tuple[float, float, float, float]]:
    script = "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })"
    return [tuple(round(v, 2) for v in r) for r in page.eval_on_selector_all(selector, script)]


def test_probability_marks_generated_tokens_as_generated(open_html, output):
    loaded = show(open_html, output.token_probabilities())
    page = loaded.page
    n, n_input = len(output.tokens), output.n_input_tokens
    assert page.locator(".ecco-token").count() == n
    assert page.locator('.ecco-token[data-kind="input"]').count() == n_input
    assert page.locator('.ecco-token[data-kind="output"]').count() == n - n_input == N_NEW
    last = page.locator(f'.ecco-token[data-position="{n - 1}"]')
    assert "generated token" in last.get_attribute("aria-label")
    last.hover()
    tip = page.locator(".ecco-tooltip")
    assert tip.is_visible() and "generated" in tip.inner_text() and "input" not in tip.inner_text()
    assert tip.locator("table.ecco-alts tr").count() >= 1
    loaded.assert_clean()


@pytest.mark.parametrize("method", METHODS)
def test_saliency_minimal_for_every_method(open_html, output, method):
    spec = output.primary_attributions(method, style="minimal")
    loaded = show(open_html, spec)
    page = loaded.page
    n = len(output.tokens)
    assert spec.options["method"] == method
    page.locator(f'.ecco-token[data-position="{n - 1}"]').hover()
    scores = page.eval_on_selector_all(".ecco-token", "els => els.map(e => e.dataset.score)")
    assert sum(1 for s in scores if s) == n - 1  # every token before the last explains it
    values = np.asarray(spec.data["methods"][0]["values"])[-1]
    assert [float(s) for s in scores[: n - 1]] == pytest.approx(values[: n - 1].tolist(), rel=1e-5, abs=1e-7)
    assert page.locator(".ecco-minibar").count() == 0
    loaded.assert_clean()


@pytest.mark.parametrize("method", METHODS)
def test_saliency_detailed_for_every_method_never_moves_a_token_on_hover(open_html, output, method):
    loaded = show(open_html, output.primary_attributions(method, style="detailed"))
    page = loaded.page
    n = len(output.tokens)
    assert page.locator(".ecco-token .ecco-minibar").count() == n
    page.mouse.move(0, 0)
    resting = rects(page)
    for target in range(output.n_input_tokens, n):  # every explained (generated) token, and back
        page.locator(f'.ecco-token[data-position="{target}"]').hover()
        assert rects(page) == resting, f"hovering token {target} moved the tokens"
        shares = [s for s in page.eval_on_selector_all(".ecco-sub", "els => els.map(e => e.textContent.trim())")
                  if s.endswith("%")]
        assert len(shares) == target
    page.mouse.move(0, 0)
    assert rects(page) == resting
    # Pointing at a token and clicking selects that token.
    box = page.locator(f'.ecco-token[data-position="{n - 2}"]')
    box.click()
    assert page.locator(".ecco-token.ecco-selected").get_attribute("data-position") == str(n - 2)
    loaded.assert_clean()


def test_contrastive_saliency_says_why_this_token_rather_than_the_foil(open_html, contrastive):
    out, foil = contrastive
    spec = out.primary_attributions("contrastive")
    method = spec.data["methods"][0]
    assert [f["id"] for f in method["foils"]] == [foil] * N_NEW
    assert method["foils"][0]["text"] == " Berlin"
    loaded = show(open_html, spec)
    page = loaded.page
    last = len(out.tokens) - 1
    page.locator(f'.ecco-token[data-position="{last}"]').hover()
    note = page.locator(".ecco-details").inner_text()
    assert "rather than" in note and "Berlin" in page.locator(".ecco-foil").inner_text()
    assert repr(out.tokens[last]).strip("'\"").strip() in note
    # The first reply's views carry the foils too (exported HTML, notebooks' tabs).
    first_reply = next(v for v in out.views() if v.view == "saliency")
    assert first_reply.data["methods"][0]["foils"] == method["foils"]
    loaded.assert_clean()


def test_layer_predictions_let_every_position_be_picked_offline(open_html, output):
    n = len(output.tokens)
    spec = output.layer_predictions(position=output.n_input_tokens, topk=3)
    loaded = show(open_html, spec)
    page = loaded.page
    assert page.locator("tr.ecco-layer-row").count() == 2
    assert page.locator('.ecco-token[aria-disabled="true"]').count() == 1  # only the first: nothing predicts it
    assert page.locator(".ecco-token.ecco-disabled").count() == 1
    for position in (1, n - 1, n):  # n: the token after the text
        page.locator(f'.ecco-token[data-position="{position}"]').click()
        assert f"position {position}" in page.locator(".ecco-note").first.inner_text()
        entry = next(e for e in spec.data["positions"] if e["position"] == position)
        first_cell = page.locator("tr.ecco-layer-row").first.locator("td.ecco-pred").first
        assert float(first_cell.get_attribute("data-prob")) == pytest.approx(entry["layers"][0]["top"][0]["prob"])
        # The actual token's column is filled at every layer, in the top-k or not.
        actual_cells = 2 if position < n else 0
        assert page.locator("tr.ecco-layer-row td.ecco-pred").count() == 2 * 3 + actual_cells
    assert "Computing" not in page.locator("div.ecco-output").inner_text()
    loaded.assert_clean()


def test_rankings_heatmap(open_html, output):
    spec = output.rankings()
    loaded = show(open_html, spec)
    page = loaded.page
    ranks = np.asarray(spec.data["ranks"])
    assert page.locator("table.ecco-heat td").count() == ranks.size
    assert [int(t) for t in page.locator("table.ecco-heat td").all_inner_texts()] == ranks.ravel().tolist()
    loaded.assert_clean()


def test_rankings_watch_columns_and_a_text_of_several_tokens_refused(open_html, output, daemon_client):
    position = output.n_input_tokens
    spec = output.rankings_watch([" Berlin", " the", int(output.token_ids[position])], position=position)
    loaded = show(open_html, spec)
    page = loaded.page
    headers = [t.strip() for t in page.locator("th.ecco-col").all_inner_texts()]
    assert headers[:2] == ["Berlin", "the"] and len(headers) == 3
    assert page.locator("table.ecco-heat td").count() == 2 * 3
    loaded.assert_clean()
    with pytest.raises(ecco_client.BadRequest, match=r"' Marie Curie' is \d+ tokens"):
        output.rankings_watch([" Marie Curie"], position=position)


def test_nmf_factor_explorer(open_html, output):
    nmf = output.run_nmf(n_components=3)
    loaded = show(open_html, nmf.explore())
    page = loaded.page
    assert page.locator(".ecco-factor").count() == 3
    assert page.locator(".ecco-factor svg.ecco-spark polyline").count() == 3
    assert page.locator(".ecco-token").count() == len(output.tokens)
    page.locator(".ecco-factor").nth(1).hover()
    assert set(page.eval_on_selector_all(".ecco-token", "els => els.map(e => e.dataset.factor)")) == {"1"}
    loaded.assert_clean()


def test_attention_of_a_default_loaded_model_draws(open_html, output):
    spec = output.attention()  # every layer, every head
    n = len(output.tokens)
    weights = np.asarray(spec.data["attention"])
    assert spec.data["layers"] == [0, 1] and spec.data["heads"] == [0, 1, 2, 3]
    assert weights.shape == (2, 4, n, n)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    loaded = show(open_html, spec)
    page = loaded.page
    assert page.get_by_label("Layer").locator("option").count() == 2
    assert page.get_by_label("Head").locator("option").count() == 5  # and the mean of heads
    assert page.locator("svg.ecco-attn-lines line").count() >= 1
    page.get_by_label("Layer").select_option("1")
    page.get_by_label("Head").select_option("2")
    shown = page.eval_on_selector_all(".ecco-right .ecco-attn-row", "els => els.map(e => Number(e.dataset.weight))")
    assert shown == pytest.approx(weights[1, 2, n - 1].tolist(), abs=1e-6)
    loaded.assert_clean()

    one = output.attention(1, 2)
    assert one.data["layers"] == [1] and one.data["heads"] == [2]
    np.testing.assert_allclose(np.asarray(one.data["attention"])[0, 0], weights[1, 2], atol=1e-6)
    loaded = show(open_html, one)
    assert loaded.page.get_by_label("Head").locator("option").count() == 1
    loaded.assert_clean()


def test_exported_page_of_the_first_reply_draws(open_html, output, tmp_path):
    path = output.to_html(tmp_path / "out.html")
    loaded = open_html(path.read_text())
    # Every view of the explanation (probability, saliency, layer predictions, rankings, ...), each drawn.
    expected = len(output.explanation_views())
    assert expected >= 4
    assert loaded.page.locator("div.ecco-output > .ecco-root").count() == expected
    assert loaded.page.locator(".ecco-error").count() == 0
    loaded.assert_clean()


def test_exported_page_lets_every_position_be_picked_and_takes_more_views(open_html, output, tmp_path):
    watch = output.rankings_watch([int(output.token_ids[1]), 5], position=1)
    path = output.to_html(tmp_path / "more.html", output.attention(layer=0), watch)
    loaded = open_html(path.read_text())
    page = loaded.page
    assert page.locator("div.ecco-output > .ecco-root").count() == len(output.explanation_views()) + 2
    assert page.locator('.ecco-root[data-view="attention"]').count() == 1
    assert page.locator('.ecco-root[data-view="rankings_watch"]').count() == 1
    lens = page.locator('.ecco-root[data-view="layer_predictions"]')
    for position in (1, len(output.tokens) - 1):  # any position, in the page, with no daemon
        lens.locator(f'.ecco-token[data-position="{position}"]').click()
        assert f"position {position}" in lens.locator(".ecco-note").first.inner_text()
        assert lens.locator("tr.ecco-layer-row").count() == output.analysis["n_layers"]
    assert "Computing" not in page.inner_text("body")
    loaded.assert_clean()
