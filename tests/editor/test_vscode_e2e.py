"""Editor tier: the VS Code extension end to end in a real VS Code.

The VS Code server build from the npm package code-server runs the extension in its real extension host,
with the workbench in headless Chromium (clients/vscode/e2e/run-e2e.mjs). The extension starts the real
pygls language server (`python -m ecco_client.lsp`) with this interpreter, and that server talks to a real
daemon serving a tiny random Llama. The suite inside the extension host (clients/vscode/e2e/suite) opens
a file, selects text, runs "Ecco: Explain selection", waits for the panel, reads its rendered state back
through the webview's messages, hovers tokens in the panel and in the editor, follows clicks both ways,
and asks for a screenshot, saved to artifacts/screenshots/vscode-explain.png.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.daemon_process import DaemonProcess

REPO = Path(__file__).resolve().parents[2]
VSCODE_DIR = REPO / "clients" / "vscode"
SCREENSHOT = REPO / "artifacts" / "screenshots" / "vscode-explain.png"
REPORT = REPO / "artifacts" / "editor" / "vscode-e2e.json"
SUITE_TIMEOUT_S = 240
GENERATE = 3  # continuation tokens streamed into the panel after the explained text
SAMPLE = "The capital of France is Paris, and the capital of Italy is Rome.\nA second line stays unexplained.\n"


def model_name(daemon: DaemonProcess) -> str:
    """The name the daemon gave the tiny model it loaded."""
    import ecco_client

    client = ecco_client.connect(connection_file=daemon.connection_file, timeout=10)
    try:
        models = client.list_models()
    finally:
        client.close()
    assert models, "the daemon loaded a model"
    return str(models[0]["name"])


def make_workspace(root: Path, daemon: DaemonProcess, results: Path) -> Path:
    """A folder with a text file, settings that point the extension at the daemon, and the suite's spec."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sample.txt").write_text(SAMPLE)
    settings = {
        "ecco.pythonPath": sys.executable,
        "ecco.connectionFile": str(daemon.connection_file),
        "ecco.model": model_name(daemon),
        "ecco.attributionMethods": ["grad_x_input"],
        # A random tiny model gives every token a small probability: all of them get a diagnostic.
        "ecco.probabilityThreshold": 0.5,
        "ecco.diagnostics.enabled": True,
        "ecco.generateTokens": GENERATE,
        "ecco.trace.server": "messages",
        "workbench.startupEditor": "none",
        "chat.disableAIFeatures": True,
    }
    (root / ".vscode").mkdir(exist_ok=True)
    (root / ".vscode" / "settings.json").write_text(json.dumps(settings, indent=2))
    spec = {"file": "sample.txt", "results": str(results), "screenshot": str(SCREENSHOT), "expectDiagnostics": True,
            "expectGenerated": GENERATE}
    (root / ".ecco-e2e.json").write_text(json.dumps(spec))
    return root


def test_explain_selection_in_vscode(built_extension: Path, daemon: DaemonProcess, tmp_path: Path,
                                     record_property) -> None:
    node = shutil.which("node")
    assert node, "node is needed to drive the workbench"
    results = tmp_path / "results.json"
    summary = tmp_path / "summary.json"
    workspace = make_workspace(tmp_path / "workspace", daemon, results)
    SCREENSHOT.unlink(missing_ok=True)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [node, str(VSCODE_DIR / "e2e" / "run-e2e.mjs"), "--workspace", str(workspace), "--tests", str(built_extension),
         "--screenshot", str(SCREENSHOT), "--summary", str(summary), "--timeout", str(SUITE_TIMEOUT_S)],
        cwd=VSCODE_DIR, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S + 120,
    )
    seen = json.loads(results.read_text()) if results.exists() else {}
    output = f"{run.stdout[-8000:]}\n{run.stderr[-4000:]}"
    assert run.returncode == 0, f"e2e run failed ({run.returncode}):\n{output}\n{seen}"
    facts = json.loads(summary.read_text())
    record_property("e2e_seconds", facts["seconds"])
    record_property("screenshot", str(SCREENSHOT))
    # What the suite saw, beside the screenshot, for the closing note and for whoever debugs a failure.
    REPORT.write_text(json.dumps({"harness": facts, "suite": seen}, indent=2))

    assert seen["ok"] is True
    state = seen["renderedState"]
    assert state["phase"] == "result" and state["tokenCount"] >= 5, state
    assert "probability" in state["views"], state
    assert state["themeKind"].startswith("vscode-"), state
    assert seen["highlightedIndex"] is not None
    assert len(seen["generatedTokens"]) == GENERATE, seen["generatedTokens"]
    assert "%" in seen["panelTooltip"] and "%" in seen["editorHover"], seen
    assert seen["diagnostics"], "improbable tokens are marked as information diagnostics"
    assert "Ecco" in seen["statusText"] and "no daemon" not in seen["statusText"], seen["statusText"]
    # What a person sees: the editor hover drawn in the workbench, and the screenshot of it all.
    assert "%" in facts["visibleHover"], facts["visibleHover"]
    assert SCREENSHOT.exists() and SCREENSHOT.stat().st_size > 20_000
