"""From no daemon at all, a script that begins with ``ecco.from_pretrained(...)`` just works.

The script runs as a fresh process with an empty HOME and daemon home: no daemon, no connection file
(or a stale one naming a port nobody listens on). It must start a private daemon, use it, and leave
nothing running when it exits.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from ecco_protocol.connection_file import ConnectionInfo, write_connection_file

SCRIPT = """
import json, sys, time
started = time.monotonic()
from ecco_client import ecco
lm = ecco.from_pretrained(sys.argv[1], verbose=False)
ready = time.monotonic()
output = lm.generate("The cat sat", generate=3)
layers = output.layer_predictions(position=output.n_input_tokens, topk=3, printJson=True)
done = time.monotonic()
from ecco_client.autostart import private_daemon_at
daemon = private_daemon_at(lm.model.client.address)
print("RESULT", json.dumps({"pid": lm.model.client.status()["daemon"]["pid"], "state_dir": str(daemon.state_dir),
                            "text": output.output_text, "layers": len(layers),
                            "from_pretrained_s": ready - started, "generate_s": done - ready}))
"""


CONNECT_SCRIPT = """
import json, sys
import ecco_client
from ecco_client.autostart import Autostart
client = ecco_client.connect(autostart=Autostart([sys.argv[1]]))
out = client.model().generate("The cat sat", generate=2)
models = [m["source"] for m in client.list_models()]
print("RESULT", json.dumps({"pid": client.status()["daemon"]["pid"], "models": models, "text": out.text}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp_path: Path, model: Path, script: str = SCRIPT) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECCO_")}
    env.update(HOME=str(tmp_path / "home"), ECCO_DAEMON_HOME=str(tmp_path / "daemon-home"), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", script, str(model)], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("stale", [False, True], ids=["no-connection-file", "stale-connection-file"])
def test_from_pretrained_starts_a_private_daemon_and_stops_it_at_exit(tmp_path, tiny_llama, stale):
    if stale:
        write_connection_file(tmp_path / "daemon-home" / "connection.json",
                              ConnectionInfo(f"tcp://127.0.0.1:{_free_port()}", "admin", "0" * 64))
    result = _run(tmp_path, tiny_llama)
    assert "The cat sat" in result["text"] and result["layers"] == 2
    # The daemon was this script's child: stopped and reaped at its exit, its private state removed.
    assert _gone(result["pid"])
    assert not Path(result["state_dir"]).exists()
    print(f"from_pretrained {result['from_pretrained_s']:.1f}s, generate {result['generate_s']:.1f}s")


def test_any_client_can_autostart_a_daemon_with_chosen_models(tmp_path, tiny_llama):
    result = _run(tmp_path, tiny_llama, CONNECT_SCRIPT)
    assert result["models"] == [str(tiny_llama)] and "The cat sat" in result["text"]
    assert _gone(result["pid"])
