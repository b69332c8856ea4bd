"""Colors in light and dark themes: the page's color scheme, VS Code's --vscode-* variables (and a
live theme switch), JupyterLab's --jp-* variables; text on every colored box must stay readable."""

from __future__ import annotations

from ecco_client.render import bundle_source, render_html

CONTRAST_JS = """
([selector, painted]) => {
  const rgb = (s) => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = (c) => { const [r, g, b] = c.map(lin); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const ratio = (a, b) => {
    const [x, y] = [lum(rgb(a)), lum(rgb(b))].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  return [...document.querySelectorAll(selector)].filter((e) => !painted || e.style.backgroundColor)
    .map((e) => ratio(getComputedStyle(e).color, getComputedStyle(e).backgroundColor));
}
"""

VSCODE_DARK = (
    "--vscode-editor-background: #1e1e1e; --vscode-editor-foreground: #cccccc; "
    "--vscode-focusBorder: #0078d4; --vscode-panel-border: #444444"
)
VSCODE_LIGHT = "--vscode-editor-background: #ffffff; --vscode-editor-foreground: #3b3b3b; --vscode-focusBorder: #005fb8"


def root_background(page) -> str:
    return page.eval_on_selector(".ecco-root", "e => getComputedStyle(e).backgroundColor")


def min_contrast(page, selector: str, *, painted: bool = True) -> float:
    """Lowest text/background contrast ratio among `selector` boxes (painted: only colored ones)."""
    ratios = page.evaluate(CONTRAST_JS, [selector, painted])
    assert ratios, f"no colored {selector} boxes"
    return min(ratios)


def host_page(body_attrs: str, fragment: str) -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body {body_attrs}>{fragment}</body></html>"


def test_dark_color_scheme_page_is_dark_and_readable(open_html, view_data):
    html = render_html("saliency", view_data["saliency"], standalone=True)
    loaded = open_html(html, color_scheme="dark")
    assert root_background(loaded.page) == "rgb(30, 30, 30)"
    loaded.page.get_by_role("button", name="Detailed").click()
    assert min_contrast(loaded.page, ".ecco-token") >= 3.0
    loaded.screenshot("saliency-dark")
    loaded.assert_clean()


def test_light_and_dark_heatmaps_stay_readable(open_html, view_data):
    for scheme in ("light", "dark"):
        loaded = open_html(render_html("rankings", view_data["rankings"], standalone=True), color_scheme=scheme)
        assert min_contrast(loaded.page, "table.ecco-heat td") >= 3.0
        loaded.screenshot(f"rankings-{scheme}")
        loaded.assert_clean()


def test_vscode_theme_variables_are_used_and_followed_live(open_html, view_data):
    fragment = render_html("probability", view_data["probability"])
    loaded = open_html(host_page(f'class="vscode-dark" style="{VSCODE_DARK}"', fragment))
    page = loaded.page
    assert root_background(page) == "rgb(30, 30, 30)"
    assert page.eval_on_selector(".ecco-root", "e => getComputedStyle(e).color") == "rgb(204, 204, 204)"
    dark_colors = page.eval_on_selector_all(".ecco-token", "els => els.map(e => e.style.backgroundColor)")
    assert min_contrast(page, ".ecco-token") >= 3.0
    page.locator('.ecco-token[data-position="4"]').click()
    assert min_contrast(page, ".ecco-details, .ecco-tooltip, .ecco-btn", painted=False) >= 4.5
    loaded.screenshot("probability-vscode-dark")

    page.evaluate(f"document.body.className = 'vscode-light'; document.body.setAttribute('style', '{VSCODE_LIGHT}')")
    page.wait_for_function(
        "getComputedStyle(document.querySelector('.ecco-root')).backgroundColor === 'rgb(255, 255, 255)'"
    )
    page.wait_for_function(
        "(before) => JSON.stringify([...document.querySelectorAll('.ecco-token')].map(e => e.style.backgroundColor))"
        " !== JSON.stringify(before)",
        arg=dark_colors,
    )
    assert min_contrast(page, ".ecco-token") >= 3.0
    loaded.assert_clean()


def test_jupyterlab_variables_and_forced_theme(open_html, view_data):
    fragment = render_html("nmf", view_data["nmf"]) + render_html("nmf", view_data["nmf"], options={"theme": "dark"})
    loaded = open_html(host_page('style="--jp-layout-color0: #111111; --jp-content-font-color1: #eeeeee"', fragment))
    roots = loaded.page.eval_on_selector_all(".ecco-root", "els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert roots == ["rgb(17, 17, 17)", "rgb(30, 30, 30)"]
    loaded.assert_clean()


def test_bundle_is_inlined_once_per_page_and_fetches_nothing(open_html, view_data):
    html = render_html("tokens", view_data["tokens"], standalone=True)
    assert html.count(bundle_source()) == 1
    loaded = open_html(html)
    assert loaded.page.evaluate("Object.keys(EccoRender).sort()") == [
        "handleOf",
        "render",
        "renderScripts",
        "version",
        "views",
    ]
    loaded.assert_clean()
