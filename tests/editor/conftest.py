"""Editor tier fixtures: the extension and its e2e suite, built once per session."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

VSCODE_DIR = Path(__file__).resolve().parents[2] / "clients" / "vscode"


@pytest.fixture(scope="session")
def built_extension() -> Path:
    """The extension, the panel glue, the renderer and the e2e suite, bundled by esbuild (a few seconds)."""
    npm = shutil.which("npm")
    assert npm, "npm is needed to build the extension"
    if not (VSCODE_DIR / "node_modules" / ".bin" / "esbuild").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=VSCODE_DIR, check=True)
    subprocess.run([npm, "run", "-s", "build:e2e"], cwd=VSCODE_DIR, check=True)
    suite = VSCODE_DIR / "out" / "e2e" / "index.js"
    assert suite.exists()
    return suite
