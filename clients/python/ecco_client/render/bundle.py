"""Finds and reads the built renderer bundle (ecco-render.js), shipped as package data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

BUNDLE_NAME = "ecco-render.js"
BUILD_HINT = "build it with: cd clients/vscode && npm install && npm run build:renderer"

_cache: dict[tuple[str, float], str] = {}


class BundleMissing(FileNotFoundError):
    """The renderer bundle was never built (a source checkout before `npm run build:renderer`)."""


def bundle_path() -> Path:
    """Path of the bundle inside the installed package (or the source tree)."""
    return Path(str(resources.files("ecco_client.render").joinpath("static", BUNDLE_NAME)))


def bundle_source() -> str:
    """The bundle's JavaScript, made safe to inline in an HTML <script> element."""
    path = bundle_path()
    try:
        stamp = path.stat().st_mtime
    except FileNotFoundError:
        raise BundleMissing(f"the renderer bundle {path} is missing; {BUILD_HINT}") from None
    key = (str(path), stamp)
    if key not in _cache:
        _cache.clear()
        _cache[key] = _inline_safe(path.read_text(encoding="utf-8"))
    return _cache[key]


def _inline_safe(js: str) -> str:
    """Keeps the HTML parser from ending the <script> element early inside the bundle's text."""
    if "<!--" in js:
        raise ValueError(f"{BUNDLE_NAME} contains '<!--', which cannot be inlined in a <script> element")
    return js.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")
