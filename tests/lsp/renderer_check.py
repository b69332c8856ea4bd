"""Draws a RenderSpec with the real renderer bundle in headless Chromium (Debian's), clicking every tab,
and returns what went wrong: the check that the language server's `view` is data the renderer draws."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecco_client.render import write_html

CHROMIUM = "/usr/bin/chromium"


async def render_problems(spec: dict[str, Any], workdir: Path) -> tuple[list[str], list[str]]:
    """(problems, tab titles): page errors, console errors and the renderer's error boxes, per tab."""
    from playwright.async_api import async_playwright

    page_file = write_html(
        workdir / "explain-view.html", (spec["view"], spec["data"], spec.get("options") or {})
    )
    problems: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page()
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
            await page.goto(page_file.as_uri())
            await page.wait_for_selector(".ecco-tab, .ecco-error")
            titles: list[str] = []
            for box in await page.query_selector_all(".ecco-error"):
                problems.append((await box.inner_text()).strip())
            for tab in await page.query_selector_all(".ecco-tab"):
                titles.append((await tab.inner_text()).strip())
                await tab.click()
                for box in await page.query_selector_all(".ecco-error"):
                    problems.append(f"{titles[-1]}: {(await box.inner_text()).strip()}")
        finally:
            await browser.close()
    return problems, titles
