"""Builds HTML that draws a view with the inlined EccoRender bundle.

A fragment (for Jupyter's `_repr_html_`) holds: a target <div> with a unique id, the view spec as a
JSON <script> block, the bundle, and a tiny inline script that renders the spec. Scripts run inline
where they stand, which JupyterLab, the classic Notebook and VS Code notebooks all do for trusted
output; nothing is fetched. A standalone page holds the bundle once and any number of views.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from ecco_client.render.bundle import bundle_source
from ecco_client.render.plain import to_plain

SPEC_TYPE = "application/vnd.ecco.view+json"
FALLBACK_TEXT = "Ecco view: it appears once its script runs (in Jupyter, trust the notebook)."

_PAGE_STYLE = """
:root { color-scheme: light dark; --ecco-page-bg: #ffffff; --ecco-page-fg: #1f2328; --ecco-page-accent: #0969da; }
@media (prefers-color-scheme: dark) {
  :root { --ecco-page-bg: #1e1e1e; --ecco-page-fg: #d4d4d4; --ecco-page-accent: #3794ff; }
}
body { margin: 16px; background: var(--ecco-page-bg); color: var(--ecco-page-fg);
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h2.ecco-page-title { font-size: 15px; margin: 18px 0 6px; }
"""

_RENDER_CALL = (
    "(function(){var s=document.getElementById(%s);if(!s||s.dataset.rendered)return;"
    "s.dataset.rendered='1';var v=JSON.parse(s.textContent);"
    "EccoRender.render(document.getElementById(%s),v.view,v.data,v.options||{});})();"
)


@dataclass
class ViewSpec:
    """One view to draw: its name, its data (see protocol/VIEWS.md) and render options."""

    view: str
    data: Mapping[str, Any]
    options: Mapping[str, Any] = field(default_factory=dict)
    title: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"view": self.view, "data": to_plain(self.data), "options": to_plain(dict(self.options))}

    def _repr_html_(self) -> str:
        return render_html(self.view, self.data, options=self.options)

    def to_html(self, path: str | Path) -> Path:
        return write_html(path, self, title=self.title)


def _json_for_script(value: Any) -> str:
    """JSON that can sit inside a <script> element: '<', '>' and '&' escaped, no NaN."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _fragment(spec: ViewSpec, *, with_bundle: bool) -> str:
    """Target div + spec + (optionally) the bundle + the render call, with a fresh unique id."""
    element_id = f"ecco-{uuid.uuid4().hex}"
    spec_id = f"{element_id}-spec"
    parts = [
        f'<div class="ecco-output" id="{element_id}" data-ecco-view="{escape(spec.view)}">'
        f'<span class="ecco-fallback">{escape(FALLBACK_TEXT)}</span></div>',
        f'<script type="{SPEC_TYPE}" id="{spec_id}" data-target="{element_id}">'
        f"{_json_for_script(spec.to_json())}</script>",
    ]
    if with_bundle:
        parts.append(f"<script>{bundle_source()}</script>")
    parts.append(f"<script>{_RENDER_CALL % (json.dumps(spec_id), json.dumps(element_id))}</script>")
    return "\n".join(parts)


def render_html(
    view: str,
    data: Mapping[str, Any],
    *,
    standalone: bool = False,
    options: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> str:
    """HTML that draws one view: a fragment for Jupyter, or (standalone) a whole page."""
    spec = ViewSpec(view, data, dict(options or {}), title)
    if standalone:
        return _page([spec], title=title)
    return _fragment(spec, with_bundle=True)


def _as_spec(item: ViewSpec | tuple | Mapping[str, Any]) -> ViewSpec:
    if isinstance(item, ViewSpec):
        return item
    if isinstance(item, tuple) and 2 <= len(item) <= 3:
        return ViewSpec(item[0], item[1], dict(item[2]) if len(item) == 3 else {})
    if isinstance(item, Mapping) and "view" in item and "data" in item:
        return ViewSpec(item["view"], item["data"], dict(item.get("options") or {}), item.get("title"))
    raise TypeError("a view is a ViewSpec, a (view, data[, options]) tuple or a {'view', 'data'} mapping")


def _page(specs: Iterable[ViewSpec], *, title: str | None) -> str:
    page_title = escape(title or "Ecco")
    body: list[str] = [f"<script>{bundle_source()}</script>"]
    for spec in specs:
        if spec.title:
            body.append(f'<h2 class="ecco-page-title">{escape(spec.title)}</h2>')
        body.append(_fragment(spec, with_bundle=False))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{page_title}</title>\n<style>{_PAGE_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def write_html(path: str | Path, *views: ViewSpec | tuple | Mapping[str, Any], title: str | None = None) -> Path:
    """Writes one self-contained HTML file that draws every given view; returns its path."""
    if not views:
        raise ValueError("write_html needs at least one view")
    target = Path(path)
    target.write_text(_page([_as_spec(v) for v in views], title=title), encoding="utf-8")
    return target
