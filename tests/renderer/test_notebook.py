"""A real notebook executed headless (nbclient + ipykernel): its outputs carry the whole view (bundle
inlined, no script URL), and those outputs draw in Chromium the way a notebook frontend shows them."""

from __future__ import annotations

import json
import re

import nbformat
from nbclient import NotebookClient

from tests.renderer.test_html import EXTERNAL

CELLS = [
    "import json, pathlib\nviews = json.loads(pathlib.Path({path!r}).read_text())",
    'from ecco_client.render import ViewSpec\nViewSpec("probability", views["probability"])',
    "from IPython.display import HTML, display\nfrom ecco_client.render import render_html\n"
    'display(HTML(render_html("nmf", views["nmf"])))',
    'import ecco_client.render, sys\nprint("torch" in sys.modules)',
]


def run_notebook(tmp_path, view_data) -> nbformat.NotebookNode:
    data_file = tmp_path / "views.json"
    data_file.write_text(json.dumps({k: view_data[k] for k in ("probability", "nmf")}), encoding="utf-8")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src.format(path=str(data_file))) for src in CELLS]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def test_executed_notebook_outputs_render_offline(open_html, tmp_path, view_data, bundle):
    nb = run_notebook(tmp_path, view_data)
    html_outputs = [
        out["data"]["text/html"]
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if "text/html" in out.get("data", {})
    ]
    assert len(html_outputs) == 2
    for html in html_outputs:
        assert "EccoRender.render(" in html
        assert not EXTERNAL.search(html)
        assert re.search(r"https?://(?!www\.w3\.org/)", html) is None  # the SVG namespace is the only URL
    ids = [re.search(r'<div class="ecco-output" id="([^"]+)"', html).group(1) for html in html_outputs]
    assert len(set(ids)) == 2
    stream = nb.cells[3]["outputs"][0]["text"].strip()
    assert stream == "False", "ecco_client.render must not import torch"

    page = "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>" + "".join(
        f"<div class='output_area'>{html}</div>" for html in html_outputs
    )
    loaded = open_html(page + "</body></html>")
    assert loaded.page.locator(".ecco-root").count() == 2
    assert loaded.page.locator(".ecco-fallback").count() == 0
    assert loaded.page.locator('.ecco-root[data-view="nmf"] .ecco-factor').count() == view_data["nmf"]["k"]
    loaded.screenshot("notebook-outputs")
    loaded.assert_clean()
