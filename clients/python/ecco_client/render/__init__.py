"""Draw analysis views with the bundled EccoRender script, offline: Jupyter output cells (JupyterLab,
the classic Notebook, VS Code notebooks) and self-contained HTML files. No CDN, no RequireJS, no iframe.
The terminal gets the probability and saliency views as rich text (terminal_view).

The view data each view takes is specified in protocol/VIEWS.md.
"""

from ecco_client.render.bundle import BundleMissing, bundle_path, bundle_source
from ecco_client.render.html import ViewSpec, render_html, write_html
from ecco_client.render.plain import to_plain
from ecco_client.render.terminal import probability_text, saliency_text, terminal_view

VIEWS = (
    "tokens",
    "probability",
    "saliency",
    "layer_predictions",
    "rankings",
    "rankings_watch",
    "nmf",
    "attention",
    "tabs",
)

__all__ = [
    "VIEWS",
    "BundleMissing",
    "ViewSpec",
    "bundle_path",
    "bundle_source",
    "probability_text",
    "render_html",
    "saliency_text",
    "terminal_view",
    "to_plain",
    "write_html",
]
