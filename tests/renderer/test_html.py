"""The Python side of rendering: fragments for Jupyter, self-contained files, plain JSON, a clear error
when the bundle was never built. These need no browser; the browser tests draw what they produce."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ecco_client.render import (
    VIEWS,
    BundleMissing,
    ViewSpec,
    bundle_source,
    render_html,
    to_plain,
    write_html,
)
from ecco_client.render import bundle as bundle_module

EXTERNAL = re.compile(r"<script[^>]*\bsrc=|<link\b|<iframe\b|require\(\[|requirejs", re.IGNORECASE)


def spec_of(fragment: str) -> dict:
    body = re.search(r'<script type="application/vnd\.ecco\.view\+json"[^>]*>(.*?)</script>', fragment, re.S)
    assert body
    return json.loads(body.group(1))


def test_fragment_inlines_everything_with_unique_ids(bundle, view_data):
    a = render_html("rankings", view_data["rankings"])
    b = render_html("rankings", view_data["rankings"])
    ids = [re.search(r'<div class="ecco-output" id="([^"]+)"', html).group(1) for html in (a, b)]
    assert ids[0] != ids[1]
    for html in (a, b):
        assert not EXTERNAL.search(html)
        assert bundle_source() in html
        assert html.count("<script") == 3  # spec, bundle, render call
    assert spec_of(a) == {"view": "rankings", "data": view_data["rankings"], "options": {}}


def test_spec_json_cannot_close_its_script_element(bundle):
    data = {"tokens": [{"text": "</script><script>alert(1)</script>", "is_input": True}]}
    html = render_html("tokens", data)
    spec_block = html.split('type="application/vnd.ecco.view+json"', 1)[1].split("</script>", 1)[0]
    assert "<" not in spec_block.split(">", 1)[1]
    assert spec_of(html)["data"] == data


def test_write_html_one_file_many_views(bundle, view_data, tmp_path):
    path = write_html(
        tmp_path / "views.html",
        ViewSpec("probability", view_data["probability"], title="Probabilities"),
        ("rankings", view_data["rankings"]),
        {"view": "nmf", "data": view_data["nmf"], "options": {"theme": "dark"}},
        title="Ecco export",
    )
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<title>Ecco export</title>" in html
    assert html.count(bundle_source()) == 1
    assert html.count('class="ecco-output"') == 3
    assert not EXTERNAL.search(html)
    with pytest.raises(ValueError):
        write_html(tmp_path / "none.html")
    with pytest.raises(TypeError):
        write_html(tmp_path / "bad.html", "rankings")


def test_to_plain_converts_numpy_and_drops_non_finite():
    value = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.float64("nan"),
        "c": (np.int64(3), float("inf")),
        4: [np.bool_(True)],
    }
    plain = to_plain(value)
    assert plain == {"a": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], "b": None, "c": [3, None], "4": [True]}
    json.dumps(plain, allow_nan=False)
    with pytest.raises(TypeError):
        to_plain({"x": object()})


def test_missing_bundle_says_how_to_build(monkeypatch, tmp_path):
    monkeypatch.setattr(bundle_module, "bundle_path", lambda: tmp_path / "ecco-render.js")
    with pytest.raises(BundleMissing, match="npm run build:renderer"):
        render_html("tokens", {"tokens": []})


def test_view_names_match_the_bundle(open_html, view_data):
    loaded = open_html(render_html("tokens", view_data["tokens"], standalone=True))
    assert sorted(loaded.page.evaluate("EccoRender.views")) == sorted(VIEWS)
    loaded.assert_clean()
