"""Fixtures for the renderer tier: a fresh bundle, view data from a real tiny model, headless Chromium.

Chromium is Debian's (/usr/bin/chromium); Playwright never downloads a browser. Every page records
console errors, uncaught exceptions and network requests so tests can assert there were none.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ecco_client.render import bundle_path, to_plain

REPO = Path(__file__).resolve().parents[2]
VSCODE_DIR = REPO / "clients" / "vscode"
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("ECCO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _newest_source_mtime() -> float:
    sources = [*(VSCODE_DIR / "renderer").rglob("*.ts"), VSCODE_DIR / "esbuild.config.mjs", VSCODE_DIR / "package.json"]
    return max(p.stat().st_mtime for p in sources)


@pytest.fixture(scope="session")
def bundle() -> Path:
    """The built bundle, rebuilt with esbuild when a renderer source is newer than it."""
    path = bundle_path()
    if not path.exists() or path.stat().st_mtime < _newest_source_mtime():
        npm = shutil.which("npm")
        assert npm, "npm is needed to build the renderer bundle"
        if not (VSCODE_DIR / "node_modules" / ".bin" / "esbuild").exists():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=VSCODE_DIR, check=True)
        subprocess.run([npm, "run", "-s", "build:renderer"], cwd=VSCODE_DIR, check=True)
    assert path.exists()
    return path


@pytest.fixture(scope="session")
def view_data(tiny_model_factory) -> dict[str, dict[str, Any]]:
    """Plain view data for every view, from the daemon's analyses on the tiny GPT-2."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.renderer.view_data import ViewBuilder

    model_dir = tiny_model_factory("gpt2")
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    views = ViewBuilder(model, AutoTokenizer.from_pretrained(model_dir)).all_views()
    return {name: to_plain(data) for name, data in views.items()}


@dataclass
class Loaded:
    """A page with what it logged: console errors, uncaught exceptions and every request URL."""

    page: Any
    url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.console_errors == [], self.console_errors
        assert self.page_errors == [], self.page_errors
        assert self.requests == [self.url], f"unexpected requests: {self.requests}"

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def handle_call(self, selector: str, script: str, arg: Any = None) -> Any:
        """Runs `script` (a function body using `handle` and `arg`) on the handle of `selector`'s view."""
        return self.page.evaluate(
            "([sel, body, arg]) => { const handle = EccoRender.handleOf(document.querySelector(sel));"
            " return new Function('handle', 'arg', body)(handle, arg); }",
            [selector, script, arg],
        )


# Sync Playwright keeps an event loop running in this thread while open: closing it with each module lets
# asyncio tests (pytest-asyncio, pytest-lsp) run after the renderer tier in any order.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_html(browser, bundle, tmp_path) -> Iterator[Any]:
    """Opens an HTML string as a file:// page; returns a Loaded that tracks errors and requests."""
    contexts = []

    def load(html: str, *, color_scheme: str = "light", width: int = 1000) -> Loaded:
        path = tmp_path / f"page{len(contexts)}.html"
        path.write_text(html, encoding="utf-8")
        context = browser.new_context(color_scheme=color_scheme, viewport={"width": width, "height": 700})
        contexts.append(context)
        page = context.new_page()
        loaded = Loaded(page, path.as_uri())
        page.on("console", lambda m: m.type == "error" and loaded.console_errors.append(m.text))
        page.on("pageerror", lambda e: loaded.page_errors.append(str(e)))
        page.on("request", lambda r: loaded.requests.append(r.url))
        page.goto(loaded.url)
        page.wait_for_selector(".ecco-root")
        return loaded

    yield load
    for context in contexts:
        context.close()
