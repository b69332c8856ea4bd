"""The extension's own checks, in the repository's one test command: the TypeScript type check of the
extension, the webview glue and the e2e suite, the formatter check, and node's unit tests of the
panel's message channel (request/reply, error replies, timeouts, dispose)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

VSCODE_DIR = Path(__file__).resolve().parents[2] / "clients" / "vscode"


@pytest.fixture(scope="module")
def npm() -> str:
    path = shutil.which("npm")
    assert path, "npm is needed for the extension's checks"
    if not (VSCODE_DIR / "node_modules" / ".bin" / "tsc").exists():
        subprocess.run([path, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=VSCODE_DIR, check=True)
    return path


def test_typecheck_and_format(npm: str) -> None:
    run = subprocess.run([npm, "run", "-s", "check"], cwd=VSCODE_DIR, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def test_message_channel_units(npm: str) -> None:
    run = subprocess.run([npm, "run", "-s", "test:unit"], cwd=VSCODE_DIR, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# fail 0" in run.stdout and "# pass 5" in run.stdout, run.stdout
