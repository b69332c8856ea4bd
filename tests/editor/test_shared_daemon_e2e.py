"""Several users on one daemon at once: two Python processes and the VS Code extension, each with its own key.

The extension explains a selection as the user "carol" while "alice" and "bob" analyse text from their own
processes; afterwards each sees only their own results and none can read another's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

import ecco_client
from tests.editor.test_vscode_e2e import SCREENSHOT, SUITE_TIMEOUT_S, VSCODE_DIR, make_workspace
from tests.service.multiuser_support import add_user

USER_SCRIPT = """
import json, sys, time
import ecco_client
client = ecco_client.connect(connection_file=sys.argv[1], timeout=30)
lm = client.model()
ids, deadline = [], time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline or len(ids) < 3:
    ids.append(lm.analyze("shared model, private results " + str(len(ids)), attribution=["gradient"]).result_id)
print(json.dumps({"result_ids": ids, "status": client.status()["store"]}))
client.close()
"""


def test_two_python_processes_and_the_extension_share_one_daemon(built_extension, daemon, tmp_path):
    files = {name: add_user(daemon.state_dir, name) for name in ("alice", "bob", "carol")}
    users = [subprocess.Popen([sys.executable, "-c", USER_SCRIPT, str(files[name]), "20"], stdout=subprocess.PIPE,
                              text=True) for name in ("alice", "bob")]
    workspace = make_workspace(tmp_path / "workspace", daemon, tmp_path / "results.json")
    settings_path = workspace / ".vscode" / "settings.json"
    settings = json.loads(settings_path.read_text())
    settings["ecco.connectionFile"] = str(files["carol"])
    settings["ecco.generateTokens"] = 0
    settings_path.write_text(json.dumps(settings))
    spec = json.loads((workspace / ".ecco-e2e.json").read_text())
    spec.update({"expectGenerated": 0, "screenshot": str(SCREENSHOT.with_name("vscode-shared-daemon.png"))})
    (workspace / ".ecco-e2e.json").write_text(json.dumps(spec))
    run = subprocess.run(
        [shutil.which("node") or "node", str(VSCODE_DIR / "e2e" / "run-e2e.mjs"), "--workspace", str(workspace),
         "--tests", str(built_extension), "--screenshot", spec["screenshot"], "--summary", str(tmp_path / "s.json"),
         "--timeout", str(SUITE_TIMEOUT_S)],
        cwd=VSCODE_DIR, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S + 120)
    outputs = [json.loads(user.communicate(timeout=180)[0]) for user in users]
    assert run.returncode == 0, f"{run.stdout[-6000:]}\n{run.stderr[-3000:]}"
    seen = json.loads((tmp_path / "results.json").read_text())
    assert seen["ok"] is True and seen["renderedState"]["phase"] == "result"

    # Each sees only their own results: their count in status, and NOT_FOUND for another's id.
    for name, out in zip(("alice", "bob"), outputs, strict=True):
        assert out["status"]["results"] == len(out["result_ids"]) >= 3, (name, out)
    with ecco_client.connect(connection_file=files["carol"], timeout=10) as carol:
        assert carol.status()["store"]["results"] >= 1  # the extension's explanation
        for out in outputs:
            with pytest.raises(ecco_client.NotFound):
                carol.call("view", {"result_id": out["result_ids"][0], "view": "rankings"})
    with ecco_client.connect(connection_file=files["alice"], timeout=10) as alice:
        with pytest.raises(ecco_client.NotFound):
            alice.call("results.info", {"result_id": outputs[1]["result_ids"][0]})
        assert alice.call("results.info", {"result_id": outputs[0]["result_ids"][0]})["kind"] == "analysis"
    # One copy of the model served all three.
    with ecco_client.connect(connection_file=daemon.connection_file, timeout=10) as admin:
        assert len(admin.list_models()) == 1
