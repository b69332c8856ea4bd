"""Each view drawn in headless Chromium from real tiny-model data, with its interactions checked on the
DOM; every page must log no console error and make no request besides its own file."""

from __future__ import annotations

import json
import re

import pytest

from ecco_client.render import render_html

ROOT = ".ecco-output"


def page_html(view: str, data: dict, **options) -> str:
    return render_html(view, data, standalone=True, options=options)


def backgrounds(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => getComputedStyle(e).backgroundColor)")


def test_tokens_view_marks_inputs_joins_pieces_and_streams(open_html, view_data):
    data = view_data["tokens"]
    tokens = data["tokens"]
    loaded = open_html(page_html("tokens", data))
    page = loaded.page
    assert page.locator(".ecco-token").count() == len(tokens)
    n_input = sum(t["is_input"] for t in tokens)
    assert page.locator('.ecco-token[data-kind="input"]').count() == n_input
    continued = [i for i, t in enumerate(tokens) if not t["word_start"]]
    assert continued, "the fixture text should contain a word split into pieces"
    for i in continued:
        assert "ecco-cont" in page.locator(f'.ecco-token[data-position="{i}"]').get_attribute("class")
        assert "ecco-joined" in page.locator(f'.ecco-token[data-position="{i - 1}"]').get_attribute("class")

    events = loaded.handle_call(
        ROOT,
        "window.__events = []; handle.on('select-token', d => __events.push(['select', d.position]));"
        "handle.on('reveal-token', d => __events.push(['reveal', d.position])); return true;",
    )
    assert events is True
    page.locator('.ecco-token[data-position="2"]').click()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert page.evaluate("__events") == [["select", 2], ["select", 3], ["select", 3], ["reveal", 3]]
    assert page.locator(".ecco-token.ecco-selected").get_attribute("data-position") == "3"

    loaded.handle_call(ROOT, "handle.appendToken(arg)", {"text": " again", "id": 1, "is_input": False})
    assert page.locator(".ecco-token").count() == len(tokens) + 1
    assert page.locator(".ecco-token").last.inner_text() == "again"
    assert f"{len(tokens) + 1} tokens" in page.locator(".ecco-note").first.inner_text()
    loaded.screenshot("tokens")
    loaded.assert_clean()


def test_probability_view_colors_and_alternatives(open_html, view_data):
    data = view_data["probability"]
    loaded = open_html(page_html("probability", data))
    page = loaded.page
    boxes = ".ecco-token"
    before = backgrounds(page, boxes)
    probs = data["probs"]
    hi = max(range(1, len(probs)), key=lambda i: probs[i])
    lo = min(range(1, len(probs)), key=lambda i: probs[i])
    assert before[hi] != before[lo], "tokens of different probability must get different colors"
    assert page.locator(".ecco-legend-gradient").count() == 1

    page.locator(f'.ecco-token[data-position="{lo}"]').hover()
    tooltip = page.locator(".ecco-tooltip")
    assert tooltip.is_visible()
    assert tooltip.locator("table.ecco-alts tr").count() == len(data["top"][lo])
    assert data["top"][lo][0]["text"].strip() in tooltip.inner_text()
    assert re.search(r"p = [\d.e+-]+%", tooltip.inner_text())
    loaded.screenshot("probability-hover")

    page.get_by_role("button", name="Surprisal").click()
    after = backgrounds(page, boxes)
    assert after[hi] != before[hi], "switching to surprisal must recolor"
    assert "bits" in page.locator(".ecco-legend").inner_text()

    page.locator(f'.ecco-token[data-position="{hi}"]').click()
    assert "position" in page.locator(".ecco-details").inner_text()
    assert page.locator(".ecco-details table.ecco-alts tr").count() == len(data["top"][hi])

    loaded.handle_call(
        ROOT, "handle.appendToken(arg)", {"text": "!", "prob": 0.25, "top": [{"text": "!", "prob": 0.25}]}
    )
    assert page.locator(boxes).count() == len(data["tokens"]) + 1
    assert page.locator(boxes).last.get_attribute("data-prob") == "0.25"
    loaded.assert_clean()


def test_saliency_hover_recolors_detailed_shows_shares_and_foil(open_html, view_data):
    data = view_data["saliency"]
    method = data["methods"][0]
    targets = method["targets"]
    loaded = open_html(page_html("saliency", data))
    page = loaded.page
    first = targets[0]
    scores = page.eval_on_selector_all(".ecco-token", "els => els.map(e => e.dataset.score)")
    assert all(s != "" for s in scores[:first]) and all(s == "" for s in scores[first:])
    for j in range(first):
        assert float(scores[j]) == pytest.approx(method["values"][0][j], rel=1e-5, abs=1e-7)
    before = backgrounds(page, ".ecco-token")

    later = targets[-1]
    page.locator(f'.ecco-token[data-position="{later}"]').hover()
    hovered = backgrounds(page, ".ecco-token")
    assert hovered != before, "hovering another output token must recolor the tokens before it"
    assert (
        sum(1 for s in page.eval_on_selector_all(".ecco-token", "els => els.map(e => e.dataset.score)") if s) == later
    )

    page.get_by_role("button", name="Detailed").click()
    page.locator(f'.ecco-token[data-position="{later}"]').click()
    shares = page.eval_on_selector_all(".ecco-token .ecco-sub", "els => els.map(e => e.textContent.trim())")
    numbers = [float(s.rstrip("%")) for s in shares if s.endswith("%") and "e" not in s]
    assert len(numbers) >= later - 2 and sum(numbers) == pytest.approx(100, abs=1.5)
    loaded.screenshot("saliency-detailed")

    buttons = page.locator('[aria-label="Method"] button')
    assert buttons.count() == len(data["methods"])
    page.get_by_role("button", name="Contrastive").click()
    foil = data["methods"][-1]["foils"][0]["text"]
    assert foil.strip() in page.locator(".ecco-foil").inner_text()
    assert "rather than" in page.locator(".ecco-details").inner_text()
    loaded.screenshot("saliency-contrastive")
    loaded.assert_clean()


def test_layer_predictions_rows_and_position_picker(open_html, view_data):
    data = view_data["layer_predictions"]
    n_layers = len(data["positions"][0]["layers"])
    loaded = open_html(page_html("layer_predictions", data))
    page = loaded.page
    rows = page.locator("tr.ecco-layer-row")
    assert rows.count() == n_layers
    k = len(data["positions"][0]["layers"][0]["top"])
    assert rows.first.locator("td.ecco-pred").count() == k + 1  # top-k and the actual next token
    first_at = data["positions"][0]["layers"][0]["top"][0]
    assert first_at["text"].strip() in rows.first.locator("td.ecco-pred").first.inner_text()
    assert page.locator('.ecco-token[data-position="0"]').get_attribute("aria-disabled") == "true"

    other = data["positions"][-1]
    page.locator(f'.ecco-token[data-position="{other["position"]}"]').click()
    cells = page.locator("tr.ecco-layer-row").first.locator("td.ecco-pred")
    probs = [float(cells.nth(i).get_attribute("data-prob")) for i in range(k)]
    assert probs == pytest.approx([p["prob"] for p in other["layers"][0]["top"]], rel=1e-6)
    assert f"position {other['position']}" in page.locator(".ecco-note").first.inner_text()

    page.locator("tr.ecco-layer-row").first.focus()
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.layer") == "1"
    loaded.screenshot("layer-predictions")
    loaded.assert_clean()


def test_rankings_heatmap_cells_log_colors_and_keyboard(open_html, view_data):
    data = view_data["rankings"]
    loaded = open_html(page_html("rankings", data))
    page = loaded.page
    cells = page.locator("table.ecco-heat td")
    n_layers, n_cols = len(data["ranks"]), len(data["targets"])
    assert cells.count() == n_layers * n_cols
    texts = cells.all_inner_texts()
    assert [int(t) for t in texts] == [r for row in data["ranks"] for r in row]
    flat = [r for row in data["ranks"] for r in row]
    colors = backgrounds(page, "table.ecco-heat td")
    best, worst = flat.index(min(flat)), flat.index(max(flat))
    assert colors[best] != colors[worst]
    ticks = page.locator(".ecco-legend-tick").all_inner_texts()
    assert ticks[0] == "1" and ticks[-1] == str(data["vocab_size"])  # a tiny vocabulary: < 1000

    cells.nth(1).hover()
    tip = page.locator(".ecco-tooltip")
    assert tip.is_visible() and f"rank {flat[1]} of {data['vocab_size']}" in tip.inner_text()
    cells.first.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("[document.activeElement.dataset.layer, document.activeElement.dataset.column]") == ["1", "1"]
    loaded.screenshot("rankings")
    loaded.assert_clean()


def test_rankings_watch_columns_are_the_watched_tokens(open_html, view_data):
    data = view_data["rankings_watch"]
    loaded = open_html(page_html("rankings_watch", data))
    page = loaded.page
    headers = [t.strip() for t in page.locator("th.ecco-col").all_inner_texts()]
    assert headers == [w["text"].strip() for w in data["watch"]]
    assert page.locator("table.ecco-heat td").count() == len(data["ranks"]) * len(data["watch"])
    assert [int(t) for t in page.locator("table.ecco-heat td").all_inner_texts()] == [
        r for row in data["ranks"] for r in row
    ]
    loaded.screenshot("rankings-watch")
    loaded.assert_clean()


def test_nmf_factor_hover_recolors_and_factor_count_switches(open_html, view_data):
    data = view_data["nmf"]
    loaded = open_html(page_html("nmf", data))
    page = loaded.page
    rows = page.locator(".ecco-factor")
    assert rows.count() == data["k"]
    assert page.locator(".ecco-factor svg.ecco-spark polyline").count() == data["k"]
    dominant = page.eval_on_selector_all(".ecco-token", "els => els.map(e => e.dataset.factor)")
    expected = []
    for j in range(len(data["tokens"])):
        shares = [f[j] / max(max(f), 1e-12) for f in data["factors"]]
        expected.append(str(shares.index(max(shares))))
    assert dominant == expected
    before = backgrounds(page, ".ecco-token")

    rows.nth(1).hover()
    assert set(page.eval_on_selector_all(".ecco-token", "els => els.map(e => e.dataset.factor)")) == {"1"}
    assert backgrounds(page, ".ecco-token") != before
    loaded.screenshot("nmf-factor-hover")
    page.mouse.move(0, 0)
    assert backgrounds(page, ".ecco-token") == before

    rows.first.focus()
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.factor") == "1"
    assert set(page.eval_on_selector_all(".ecco-token", "els => els.map(e => e.dataset.factor)")) == {"1"}
    page.keyboard.press("Enter")  # pins factor 2
    page.locator(".ecco-title").click()
    assert set(page.eval_on_selector_all(".ecco-token", "els => els.map(e => e.dataset.factor)")) == {"1"}
    assert page.locator(".ecco-factor.ecco-active").get_attribute("data-factor") == "1"

    page.get_by_label("Number of factors").select_option("4")
    assert page.locator(".ecco-factor").count() == 4
    assert "live daemon" in page.locator(".ecco-toolbar").inner_text()
    loaded.assert_clean()


def test_nmf_live_host_answers_request(open_html, view_data):
    loaded = open_html(page_html("nmf", view_data["nmf"], live=True))
    page = loaded.page
    loaded.handle_call(ROOT, "window.__req = []; handle.on('request-nmf', d => __req.push(d));")
    page.get_by_label("Number of factors").fill("5")
    page.get_by_role("button", name="Recompute").click()
    assert page.evaluate("__req") == [{"k": 5, "from_layer": 0, "to_layer": 1}]
    assert "computing 5 factors" in page.locator(".ecco-toolbar").inner_text()
    loaded.handle_call(ROOT, "handle.update(arg)", view_data["nmf_k5"])
    assert page.locator(".ecco-factor").count() == 5
    assert page.locator(".ecco-pending").count() == 0
    loaded.assert_clean()


def test_attention_lines_heat_and_pickers(open_html, view_data):
    data = view_data["attention"]
    n_layers, n_heads = len(data["layers"]), len(data["heads"])
    loaded = open_html(page_html("attention", data))
    page = loaded.page
    assert page.get_by_label("Layer").locator("option").count() == n_layers
    assert page.get_by_label("Head").locator("option").count() == n_heads + 1  # plus the mean of heads
    query = len(data["tokens"]) - 1
    weights = [
        float(w)
        for w in page.eval_on_selector_all(".ecco-right .ecco-attn-row", "els => els.map(e => e.dataset.weight)")
    ]
    mean = [sum(data["attention"][0][h][query][k] for h in range(n_heads)) / n_heads for k in range(len(weights))]
    assert weights == pytest.approx(mean, abs=1e-6)
    assert page.locator("svg.ecco-attn-lines line").count() >= 1
    loaded.screenshot("attention-lines")

    page.get_by_label("Head").select_option("0")
    single = [
        float(w)
        for w in page.eval_on_selector_all(".ecco-right .ecco-attn-row", "els => els.map(e => e.dataset.weight)")
    ]
    assert single == pytest.approx(data["attention"][0][0][query], abs=1e-6)
    page.locator('.ecco-left .ecco-attn-row[data-position="3"]').click()
    lines = page.locator("svg.ecco-attn-lines line")
    assert 1 <= lines.count() <= 4  # causal: token 3 attends to positions 0..3 only
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.dataset.position") == "2"

    page.get_by_role("button", name="Heat").click()
    page.locator('.ecco-token[data-position="5"]').click()
    heat = [float(w) for w in page.eval_on_selector_all(".ecco-token", "els => els.map(e => e.dataset.weight)")]
    assert heat == pytest.approx(data["attention"][0][0][5], abs=1e-6)
    loaded.screenshot("attention-heat")
    loaded.assert_clean()


def test_tabs_switch_views_and_forward_streamed_tokens(open_html, view_data):
    tabs = [
        {"title": "Probability", "view": "probability", "data": view_data["probability"]},
        {"title": "Saliency", "view": "saliency", "data": view_data["saliency"]},
        {"title": "Rankings", "view": "rankings", "data": view_data["rankings"]},
    ]
    loaded = open_html(page_html("tabs", {"tabs": tabs}))
    page = loaded.page
    assert page.get_by_role("tab").count() == 3
    assert page.locator('.ecco-panel[data-view="rankings"]').is_hidden()
    page.get_by_role("tab", name="Rankings").click()
    assert page.locator('.ecco-panel[data-view="rankings"]').is_visible()
    assert page.locator('.ecco-panel[data-view="probability"]').is_hidden()
    page.keyboard.press("ArrowLeft")
    assert page.locator('.ecco-panel[data-view="saliency"]').is_visible()
    loaded.handle_call(ROOT, "handle.appendToken(arg)", {"text": " more", "prob": 0.5})
    n = len(view_data["probability"]["tokens"])
    assert page.locator('.ecco-panel[data-view="probability"] .ecco-token').count() == n + 1
    loaded.assert_clean()


def test_bad_data_shows_which_field_is_wrong(open_html, view_data):
    data = dict(view_data["rankings"])
    data["ranks"] = data["ranks"][:1] + [data["ranks"][1][:-1]]
    loaded = open_html(page_html("rankings", data))
    error = loaded.page.locator(".ecco-error")
    assert error.is_visible() and "ranks[1]" in error.inner_text()
    assert len(loaded.page_errors) == 1 and "ranks[1]" in loaded.page_errors[0]


def test_token_text_is_never_parsed_as_html(open_html, view_data):
    data = {"tokens": [dict(t) for t in view_data["tokens"]["tokens"]]}
    data["tokens"][1]["text"] = "</script><img src=x onerror=alert(1)>"
    loaded = open_html(page_html("tokens", data))
    assert loaded.page.locator(".ecco-token").count() == len(data["tokens"])
    assert loaded.page.locator("img").count() == 0
    assert "<img" in loaded.page.locator('.ecco-token[data-position="1"]').inner_text()
    loaded.assert_clean()


def test_live_layer_predictions_request_answered_in_its_tab(open_html, view_data):
    full = view_data["layer_predictions"]
    first, wanted = full["positions"][0], full["positions"][-1]
    partial = {**full, "positions": [first], "selected": first["position"]}
    tabs = [
        {"title": "Tokens", "view": "tokens", "data": view_data["tokens"]},
        {"title": "Layers", "view": "layer_predictions", "data": partial},
    ]
    loaded = open_html(page_html("tabs", {"tabs": tabs}, live=True))
    page = loaded.page
    loaded.handle_call(ROOT, "window.__req = []; handle.on('request-layer-predictions', d => __req.push(d));")
    page.get_by_role("tab", name="Layers").click()
    panel = page.locator('.ecco-panel[data-view="layer_predictions"]')
    panel.locator(f'.ecco-token[data-position="{wanted["position"]}"]').click()
    assert page.evaluate("__req") == [{"position": wanted["position"], "tab": 1, "view": "layer_predictions"}]
    assert "Computing position" in panel.locator(".ecco-note").first.inner_text()
    loaded.handle_call(ROOT, "handle.updateTab(1, arg)", full)
    assert panel.is_visible()
    assert f"position {wanted['position']}" in panel.locator(".ecco-note").first.inner_text()
    prob = float(panel.locator("tr.ecco-layer-row td.ecco-pred").first.get_attribute("data-prob"))
    assert prob == pytest.approx(wanted["layers"][0]["top"][0]["prob"], rel=1e-6)
    loaded.assert_clean()


def test_strict_webview_csp_allows_the_bundle_and_its_styles(browser, bundle, tmp_path, view_data):
    """The VS Code webview's policy: scripts and styles only with the nonce, nothing else."""
    (tmp_path / "ecco-render.js").write_text(bundle.read_text(encoding="utf-8"), encoding="utf-8")
    nonce = "n0nce4test"
    csp = f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'"
    data = json.dumps(view_data["saliency"]).replace("<", "\\u003c")
    page_file = tmp_path / "webview.html"
    page_file.write_text(
        f"""<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="{csp}"></head>
<body><div id="root"></div><script nonce="{nonce}" src="ecco-render.js"></script>
<script nonce="{nonce}">window.h = EccoRender.render(document.getElementById("root"), "saliency", {data},
  {{nonce: "{nonce}", live: true}});</script></body></html>""",
        encoding="utf-8",
    )
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(page_file.as_uri())
    page.wait_for_selector(".ecco-token")
    styled = page.eval_on_selector(".ecco-token", "e => getComputedStyle(e).borderTopStyle")
    painted = page.eval_on_selector_all(".ecco-token", "els => els.filter(e => e.style.backgroundColor).length")
    context.close()
    assert problems == []
    assert styled == "dashed"  # the stylesheet applied: input tokens get a dashed border
    assert painted >= 1  # CSSOM colors applied under the policy
