"""The Explain panel's page alone, in headless Chromium, with a stand-in for VS Code's webview API.

Faster than the full editor run and able to reach what it does not: the ready handshake replaying the last
result, the streamed continuation, a recompute asked for by the NMF view and answered by the host, and
the error state. The page is the panel's own (its glue, the renderer bundle, its stylesheet) under the
same strict Content-Security-Policy the extension sets; the view data comes from a real tiny model.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecco_client.tabs import TITLES
from tests.renderer.conftest import SCREENSHOTS

REPO = Path(__file__).resolve().parents[2]
VSCODE_DIR = REPO / "clients" / "vscode"
CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 10_000


@pytest.fixture(scope="module")
def panel_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The panel's page and assets, laid out as the webview serves them, with a stand-in acquireVsCodeApi."""
    npm = shutil.which("npm")
    assert npm, "npm is needed to build the panel"
    if not (VSCODE_DIR / "node_modules" / ".bin" / "esbuild").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=VSCODE_DIR, check=True)
    subprocess.run(["node", "esbuild.config.mjs", "renderer", "webview"], cwd=VSCODE_DIR, check=True)
    root = tmp_path_factory.mktemp("panel")
    for name in ("ecco-render.js", "panel.js"):
        shutil.copy(VSCODE_DIR / "out" / "media" / name, root / name)
    shutil.copy(VSCODE_DIR / "media" / "panel.css", root / "panel.css")
    nonce = secrets.token_urlsafe(18)
    # The same policy as src/panel/html.ts, with file: standing in for the webview's resource origin.
    csp = (f"default-src 'none'; img-src file: data:; font-src file:; style-src file: 'nonce-{nonce}'; "
           f"script-src 'nonce-{nonce}'")
    (root / "index.html").write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="ecco-nonce" content="{nonce}">
<link rel="stylesheet" href="panel.css" nonce="{nonce}"><title>Ecco</title></head>
<body class="vscode-light" data-vscode-theme-kind="vscode-light">
<div id="ecco-message" class="ecco-panel-message" role="status">Select text.</div><div id="ecco-root"></div>
<script nonce="{nonce}">
  window.__posted = [];
  window.acquireVsCodeApi = () => ({{ postMessage: (m) => window.__posted.push(JSON.parse(JSON.stringify(m))) }});
</script>
<script nonce="{nonce}" src="ecco-render.js"></script>
<script nonce="{nonce}" src="panel.js"></script>
</body></html>""")
    return root


@pytest.fixture(scope="module")
def views(tiny_model_factory) -> dict[str, Any]:
    """Every view's data from the daemon's analyses on the tiny GPT-2 (the renderer tier's builder)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ecco_client.render import to_plain
    from tests.renderer.view_data import ViewBuilder

    model_dir = tiny_model_factory("gpt2")
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()  # + attention
    views = ViewBuilder(model, AutoTokenizer.from_pretrained(model_dir)).all_views()
    return {name: to_plain(data) for name, data in views.items()}


def explain_result(views: dict[str, Any], tabs: bool = True) -> dict[str, Any]:
    """An `ecco.explain` reply as the language server shapes it, over the tiny model's real data: the
    probability and NMF views in tabs, or the probability view alone."""
    prob = views["probability"]
    tokens, column = [], 0
    for i, token in enumerate(prob["tokens"]):
        start, column = column, column + len(token["text"])
        tokens.append({
            "index": i, "text": token["text"], "generated": not token["is_input"],
            "range": {"start": {"line": 0, "character": start}, "end": {"line": 0, "character": column}},
            "probability": prob["probs"][i], "rank": (prob.get("ranks") or [None] * len(tokens))[i],
            "alternatives": [{"token": a["text"], "probability": a["prob"]} for a in (prob["top"][i] or [])],
        })
    pages = [{"title": "Probability", "view": "probability", "data": prob},
             {"title": "Factors", "view": "nmf", "data": views["nmf"]}]
    view = {"view": "tabs", "data": {"tabs": pages}} if tabs else {"view": "probability", "data": prob}
    return {"resultId": "result-1", "uri": "file:///sample.txt", "model": "tiny-gpt2", "tokens": tokens,
            "range": {"start": tokens[0]["range"]["start"], "end": tokens[-1]["range"]["end"]}, "view": view}


class StandInHost:
    """Plays the extension host's side of shared/protocol.ts over the page's postMessage."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.next_id = 10_000

    def posted(self) -> list[dict[str, Any]]:
        return self.page.evaluate("window.__posted")

    def wait_posted(self, predicate_js: str, arg: Any = None) -> dict[str, Any]:
        """Waits for the page to post a message for which `(m, arg) => predicate` holds; returns it."""
        found = self.page.wait_for_function(
            f"([arg]) => window.__posted.find((m) => ({predicate_js})(m, arg)) || null", arg=[arg], timeout=WAIT_MS)
        return found.json_value()

    def send(self, body: dict[str, Any], in_reply_to: int | None = None) -> int:
        self.next_id += 1
        envelope: dict[str, Any] = {"messageId": self.next_id, "body": body}
        if in_reply_to is not None:
            envelope["inReplyTo"] = in_reply_to
        self.page.evaluate("(m) => window.postMessage(m, '*')", envelope)
        return self.next_id

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        sent = self.send(body)
        reply = self.wait_posted("(m, id) => m.inReplyTo === id", sent)
        assert "error" not in reply, reply
        return reply["body"]

    def state(self) -> dict[str, Any]:
        return self.request({"type": "getRenderedState"})["state"]


@pytest.fixture
def panel(panel_files: Path) -> Iterator[tuple[Any, StandInHost, list[str]]]:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"])
        page = browser.new_page(viewport={"width": 420, "height": 800})
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: r.url.startswith("file:") or problems.append(f"request {r.url}"))
        page.goto((panel_files / "index.html").as_uri())
        yield page, StandInHost(page), problems
        browser.close()


def test_handshake_replays_the_result_and_tokens_link_both_ways(panel, views) -> None:
    page, host, problems = panel
    result = explain_result(views, tabs=False)
    ready = host.wait_posted("(m) => m.body.type === 'ready'")
    host.send({"type": "readyReply", "last": {"type": "showResult", "result": result}}, in_reply_to=ready["messageId"])

    state = host.state()
    assert state["phase"] == "result" and state["resultId"] == "result-1"
    assert state["tokenCount"] == len(result["tokens"])
    assert state["views"] == ["probability"]
    assert state["cspViolations"] == [] and state["themeKind"] == "vscode-light"

    # A click on a token's box tells the host which token, so it can select the text in the editor.
    page.locator(".ecco-token").nth(2).click()
    host.wait_posted("(m) => m.body.type === 'tokenClicked' && m.body.index === 2")

    # The editor's cursor moved onto token 3: the panel selects and marks it, and does not echo a click back.
    host.send({"type": "highlightToken", "index": 3})
    assert host.state()["highlightedIndex"] == 3
    assert page.locator(".ecco-token[data-position='3']").get_attribute("aria-selected") == "true"
    assert "ecco-linked" in (page.locator(".ecco-token[data-position='3']").first.get_attribute("class") or "")
    assert not [m for m in host.posted() if m["body"].get("type") == "tokenClicked" and m["body"]["index"] == 3]

    tooltip = host.request({"type": "probeToken", "index": 3, "action": "hover"})["tooltip"]
    assert "%" in tooltip, tooltip
    assert problems == []


def test_streamed_tokens_recompute_and_errors(panel, views) -> None:
    page, host, problems = panel
    result = explain_result(views)
    ready = host.wait_posted("(m) => m.body.type === 'ready'")
    host.send({"type": "readyReply", "last": None}, in_reply_to=ready["messageId"])
    assert host.state()["phase"] == "empty"
    host.send({"type": "showLoading", "text": "Explaining 40 characters"})
    assert host.state()["phase"] == "loading"
    assert page.locator("body[aria-busy='true'] #ecco-message").inner_text() == "Explaining 40 characters"

    host.send({"type": "showResult", "result": result})
    assert {"tabs", "probability", "nmf"} <= set(host.state()["views"])
    before = host.state()["tokenCount"]
    streamed = {"index": before, "text": " Rome", "range": None, "probability": 0.25, "rank": 2,
                "alternatives": [{"token": " Paris", "probability": 0.5}], "generated": True}
    host.send({"type": "appendToken", "resultId": "result-1", "token": streamed})
    after = host.state()
    assert after["tokenCount"] == before + 1 and after["tokenTexts"][-1] == "Rome"

    # Tokens that streamed in before the reply was drawn come with the result: they are drawn too.
    early = {**result, "resultId": "result-2", "tokens": [*result["tokens"], {**streamed, "text": " Milan"}]}
    host.send({"type": "showResult", "result": early})
    redrawn = host.state()
    assert redrawn["resultId"] == "result-2" and redrawn["tokenCount"] == before + 1
    assert redrawn["tokenTexts"][-1] == "Milan"

    # The NMF tab asks for another factor count; the host's reply is drawn in that tab.
    page.get_by_role("tab", name="Factors").click()
    page.get_by_label("Number of factors").fill("5")
    page.get_by_role("button", name="Recompute").click()
    asked = host.wait_posted("(m) => m.body.type === 'recompute'")
    assert asked["body"]["resultId"] == "result-2" and asked["body"]["view"] == "nmf"
    assert asked["body"]["params"]["k"] == 5
    host.send({"type": "recomputeReply", "data": views["nmf_k5"]}, in_reply_to=asked["messageId"])
    page.wait_for_function("document.querySelectorAll('.ecco-panel:not([hidden]) .ecco-factor').length === 5",
                           timeout=WAIT_MS)

    host.send({"type": "showError", "message": "daemon unreachable at tcp://127.0.0.1:5555"})
    state = host.state()
    assert state["phase"] == "error" and "unreachable" in state["errorMessage"]
    assert page.locator("#ecco-message.ecco-panel-error").is_visible()
    assert json.dumps(state["cspViolations"]) == "[]"
    assert problems == []


def test_progress_is_drawn_while_loading(panel, views) -> None:
    page, host, problems = panel
    ready = host.wait_posted("(m) => m.body.type === 'ready'")
    host.send({"type": "readyReply", "last": None}, in_reply_to=ready["messageId"])
    host.send({"type": "showLoading", "text": "Explaining 40 characters"})
    host.send({"type": "showProgress", "message": "waiting in the daemon's queue: position 2", "percentage": None})
    assert host.state()["progress"] == {"message": "waiting in the daemon's queue: position 2", "percentage": None}
    host.send({"type": "showProgress", "message": "attribution (integrated_gradients): 30/120 steps",
               "percentage": 25})
    assert host.state()["progress"]["percentage"] == 25
    assert page.locator("progress.ecco-panel-progress").get_attribute("value") == "25"
    assert "30/120 steps" in page.locator("#ecco-message").inner_text()

    host.send({"type": "showResult", "result": explain_result(views, tabs=False)})
    assert host.state()["progress"] is None and page.locator("progress.ecco-panel-progress").is_hidden()
    host.send({"type": "showProgress", "message": "late", "percentage": 90})  # after the result: not drawn
    assert host.state()["progress"] is None
    assert problems == []


def causal_attention(n_tokens: int, heads: int, focus: int) -> list:
    """(1, heads, T, T) attention weights: each query spread evenly over the keys up to it, except that the
    last query attends to ``focus`` alone (so the drawn weights tell which layer is shown)."""
    rows = [[1.0 / (q + 1) if k <= q else 0.0 for k in range(n_tokens)] for q in range(n_tokens)]
    rows[-1] = [1.0 if k == focus else 0.0 for k in range(n_tokens)]
    return [[rows for _ in range(heads)]]


def test_live_attention_and_rankings_watch_ask_the_host(panel, views) -> None:
    page, host, problems = panel
    result = explain_result(views, tabs=False)
    tokens = views["probability"]["tokens"]
    n = len(tokens)
    watch = {**views["rankings_watch"], "positions": list(range(1, n + 1))}
    attention = {"tokens": tokens, "layers": [2], "heads": [0, 1], "n_layers": 3,
                 "attention": causal_attention(n, 2, focus=n - 1)}
    live = {"live": True}
    result["view"] = {"view": "tabs", "options": live, "data": {"tabs": [
        {"title": "Probability", "view": "probability", "data": views["probability"]},
        {"title": "Rankings watch", "view": "rankings_watch", "data": watch, "options": live},
        {"title": "Attention", "view": "attention", "data": attention, "options": live},
    ]}}
    ready = host.wait_posted("(m) => m.body.type === 'ready'")
    host.send({"type": "readyReply", "last": {"type": "showResult", "result": result}}, in_reply_to=ready["messageId"])
    shown = page.locator(".ecco-panel:not([hidden])")

    # Attention: the picker offers every layer; one not embedded is asked of the host, and its answer drawn.
    page.get_by_role("tab", name="Attention").click()
    layer = shown.get_by_label("Layer", exact=True)
    assert layer.locator("option").all_inner_texts() == ["Layer 0", "Layer 1", "Layer 2"]
    assert shown.locator(".ecco-right .ecco-attn-row").nth(n - 1).get_attribute("data-weight") == "1"
    layer.select_option("0")
    asked = host.wait_posted("(m) => m.body.type === 'recompute' && m.body.view === 'attention'")
    assert asked["body"]["params"]["layer"] == 0 and asked["body"]["params"]["tab"] == 2
    assert "computing layer 0" in shown.locator(".ecco-pending").inner_text()
    host.send({"type": "recomputeReply", "data": {**attention, "layers": [0], "attention": causal_attention(n, 2, 0)}},
              in_reply_to=asked["messageId"])
    page.wait_for_function("document.querySelector('.ecco-panel:not([hidden]) .ecco-right .ecco-attn-row')"
                           ".dataset.weight === '1'", timeout=WAIT_MS)
    assert layer.input_value() == "0" and shown.locator(".ecco-pending").count() == 0

    # Rankings watch: the typed tokens (leading spaces kept) and the position go to the host; its answer is drawn.
    page.get_by_role("tab", name="Rankings watch").click()
    shown.get_by_label("Tokens to watch").fill(" Paris, London")
    shown.get_by_label("Position").select_option(str(n))
    shown.get_by_role("button", name="Rank").click()
    asked = host.wait_posted("(m) => m.body.type === 'recompute' && m.body.view === 'rankings-watch'")
    assert asked["body"]["params"]["watch"] == [" Paris", " London"] and asked["body"]["params"]["position"] == n
    answer = {**watch, "position": n, "watch": [{"text": " Paris", "id": 1}, {"text": " London", "id": 2}],
              "ranks": [[1, 7] for _ in watch["ranks"]]}
    answer.pop("probs", None)
    host.send({"type": "recomputeReply", "data": answer}, in_reply_to=asked["messageId"])
    page.wait_for_function("[...document.querySelectorAll('.ecco-panel:not([hidden]) th.ecco-col')]"
                           ".map((th) => th.textContent).join('|') === 'Paris|London'", timeout=WAIT_MS)

    # A refusal (a text of several tokens) is shown in the tab that asked, in the host's words.
    shown.get_by_label("Tokens to watch").fill(" catapult dogma")
    shown.get_by_role("button", name="Rank").click()
    asked = host.wait_posted("(m) => m.body.view === 'rankings-watch' && m.body.params.watch[0] === ' catapult dogma'")
    refusal = "the daemon refused: watch entry ' catapult dogma' is 3 tokens (' cat', 'apult', ' dogma')"
    host.next_id += 1
    page.evaluate("(m) => window.postMessage(m, '*')", {"messageId": host.next_id, "inReplyTo": asked["messageId"],
                                                          "error": refusal, "body": {"type": "ack"}})
    error = shown.locator(".ecco-request-error[role=alert]")
    error.wait_for(timeout=WAIT_MS)
    assert error.inner_text() == refusal
    assert shown.locator(".ecco-pending").count() == 0
    assert shown.get_by_label("Tokens to watch").input_value() == " catapult dogma"  # kept, to be corrected
    assert [m for m in host.posted() if m["body"]["type"] == "webviewError"]  # and logged by the host
    assert problems == []


def test_every_tab_can_be_reached_in_a_narrow_side_bar(panel, views) -> None:
    """VS Code's side bar starts about 300 px wide: the tab strip wraps rather than hiding tabs off the edge."""
    page, host, problems = panel
    page.set_viewport_size({"width": 260, "height": 800})
    result = explain_result(views)
    pages = [{"title": TITLES[name], "view": name, "data": data} for name, data in views.items() if name in TITLES]
    result["view"] = {"view": "tabs", "data": {"tabs": pages}}
    ready = host.wait_posted("(m) => m.body.type === 'ready'")
    host.send({"type": "readyReply", "last": {"type": "showResult", "result": result}}, in_reply_to=ready["messageId"])
    tabs = page.locator('[role="tab"]')
    assert tabs.count() == len(pages) >= 6
    width = page.evaluate("document.documentElement.clientWidth")
    for i in range(tabs.count()):
        box = tabs.nth(i).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (i, box, width)
    tabs.last.click()
    assert tabs.last.get_attribute("aria-selected") == "true"
    page.screenshot(path=str(SCREENSHOTS / "panel-narrow-tabs.png"))
    # The attention lines narrow to fit beside the two token columns instead of scrolling sideways.
    page.locator('[role="tab"]', has_text=TITLES["attention"]).click()
    attention = page.locator(".ecco-attn")
    assert attention.locator("line").count() > 0
    overflow = attention.evaluate("(el) => el.parentElement.scrollWidth - el.parentElement.clientWidth")
    assert overflow <= 0, f"the attention view is {overflow} px wider than the panel"
    page.screenshot(path=str(SCREENSHOTS / "panel-narrow-attention.png"))
    assert problems == []
