"""The extension's own checks, in the repository's one test command: the TypeScript type check of the
extension, the webview glue and the e2e suite, the formatter check, and node's unit tests of the
panel's message channel (request/reply, error replies, timeouts, dispose)."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
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


def test_vsix_packages_offline_with_only_the_bundles(npm: str, tmp_path: Path) -> None:
    """`vsce package` builds the .vsix without the network; it ships the bundles, not sources or node_modules,
    and every setting it contributes says what it does."""
    run = subprocess.run([npm, "run", "-s", "package"], cwd=VSCODE_DIR, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    vsix = VSCODE_DIR / "ecco-vscode.vsix"
    with zipfile.ZipFile(vsix) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("extension/package.json"))
    for shipped in ("extension/out/extension.js", "extension/out/media/panel.js", "extension/out/media/ecco-render.js",
                    "extension/media/panel.css", "extension/package.json"):
        assert shipped in names, sorted(names)
    assert not [n for n in names if "/src/" in n or "node_modules" in n or "/e2e/" in n], sorted(names)
    settings = manifest["contributes"]["configuration"]["properties"]
    expected = {"ecco.pythonPath", "ecco.daemonAddress", "ecco.connectionFile", "ecco.userKey", "ecco.model",
                "ecco.sshHost", "ecco.attributionMethods", "ecco.probabilityThreshold", "ecco.diagnostics.enabled",
                "ecco.generateTokens"}
    assert expected <= settings.keys()
    assert all(s.get("description") or s.get("markdownDescription") for s in settings.values())
    commands = {c["command"] for c in manifest["contributes"]["commands"]}
    assert "ecco.explainSelection" in commands
    assert any(k["command"] == "ecco.explainSelection" for k in manifest["contributes"]["keybindings"])
    assert any(m["command"] == "ecco.explainSelection" for m in manifest["contributes"]["menus"]["editor/context"])
