"""Both command lines against the real daemon: no tracebacks (one sentence, a non-zero exit), flags named
as flags, every flag's help with its default, global options after the subcommand, `explain`'s numbers,
JSON and page."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ecco_client.cli import build_parser as client_parser
from ecco_client.cli import main as client_main
from ecco_daemon.cli import build_parser as daemon_parser
from ecco_daemon.cli import main as daemon_main

TEXT = "the cat sat on the mat"


def run_client(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = client_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_explain_prints_numbers_beside_the_colors_with_global_options_after_the_command(daemon, capsys):
    code, out, err = run_client(capsys, "explain", TEXT, "--attribution", "grad_x_input",
                                "--connection-file", str(daemon.connection_file), "--no-progress")
    assert code == 0, err
    assert "probability" in out and "model's top choices" in out and "%" in out
    assert "attribution" in out and "what drove" in out


def test_explain_json_holds_every_token_and_the_saliency_row(daemon, capsys):
    code, out, _ = run_client(capsys, "--connection-file", str(daemon.connection_file), "explain", TEXT,
                              "--attribution", "gradient", "--target", "3", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["tokens"][0]["probability"] is None and document["tokens"][1]["probability"] > 0
    assert document["saliency"]["target"] == 3 and len(document["saliency"]["values"]) == 3
    assert abs(sum(document["saliency"]["values"]) - 1) < 1e-4


def test_explain_writes_one_page_with_every_view(daemon, capsys, tmp_path: Path):
    page = tmp_path / "explained.html"
    code, out, _ = run_client(capsys, "--connection-file", str(daemon.connection_file), "explain", TEXT,
                              "--attribution", "grad_x_input", "--html", str(page))
    assert code == 0 and str(page) in out.replace("\n", "")
    html = page.read_text()
    for title in ("Probability", "Saliency", "Layer predictions", "Rankings", "Neuron factors"):
        assert title in html, title


def test_explain_with_a_foil_and_watched_tokens(daemon, capsys, tmp_path: Path):
    connection = ("--connection-file", str(daemon.connection_file))
    # The tiny tokenizer reads TEXT as ..., ' the', ' m', 'at': the last token, 11, is 'at'.
    code, out, err = run_client(capsys, *connection, "explain", TEXT, "--foil", " dog", "--watch", "at",
                                "--watch", " the", "--no-progress")
    assert code == 0, err
    assert "contrastive: what drove 'at' (position 11), rather than ' dog'" in " ".join(out.split())
    assert "rank of each watched token at position 11" in " ".join(out.split()) and "' the'" in out
    code, out, _ = run_client(capsys, *connection, "explain", TEXT, "--foil", " dog", "--watch", "at", "--json")
    document = json.loads(out)
    assert document["saliency"]["method"] == "contrastive" and document["saliency"]["foil"] == " dog"
    watched = document["rankings_watch"]
    assert watched["position"] == 11 and watched["tokens"] == ["at"]
    assert len(watched["ranks"]) >= 2 and all(len(row) == 1 and row[0] >= 1 for row in watched["ranks"])
    page = tmp_path / "more.html"
    code, _, err = run_client(capsys, *connection, "explain", TEXT, "--watch", "at", "--attention",
                              "--html", str(page))
    assert code == 0, err
    html = page.read_text()
    for title in ("Rankings watch", "Attention", "Layer predictions"):
        assert title in html, title


def test_explain_refuses_a_foil_or_watch_of_several_tokens_and_attention_without_a_page(daemon, capsys):
    connection = ("--connection-file", str(daemon.connection_file))
    for flag in ("--foil", "--watch"):
        code, _, err = run_client(capsys, *connection, "explain", TEXT, flag, " Marie Curie")
        assert code == 1 and "' Marie Curie' is" in err and "tokens" in err and "Traceback" not in err
    code, _, err = run_client(capsys, *connection, "explain", TEXT, "--attention")
    assert code == 2 and "--html" in err


def test_a_target_the_text_lacks_is_one_sentence(daemon, capsys):
    code, _, err = run_client(capsys, "--connection-file", str(daemon.connection_file), "explain", TEXT,
                              "--attribution", "gradient", "--target", "99")
    assert code == 2 and "--target 99" in err and "Traceback" not in err


def test_a_connection_file_that_is_not_json_names_the_flag(capsys, tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("not json at all")
    code, _, err = run_client(capsys, "--connection-file", str(bad), "status")
    assert code == 1 and "is not JSON" in err and "--connection-file" in err and "connection_file=" not in err


def test_ssh_with_an_ipc_connection_file_is_one_sentence(capsys, tmp_path: Path):
    ipc = tmp_path / "ipc.json"
    ipc.write_text(json.dumps({"address": f"ipc://{tmp_path}/sock", "user": "admin", "key": "ab" * 32}))
    code, _, err = run_client(capsys, "--connection-file", str(ipc), "--ssh", "me@example.invalid", "status")
    assert code == 1 and "tcp://" in err and "--ssh" in err and "Traceback" not in err


def test_too_large_names_the_daemons_flag(daemon, capsys):
    code, _, err = run_client(capsys, "--connection-file", str(daemon.connection_file), "generate", "hi",
                              "-n", "100000")
    assert code == 1 and "TOO_LARGE" in err and "--max-new-tokens" in err


def test_daemon_status_with_a_wrong_key_says_so(daemon, capsys, tmp_path: Path):
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**json.loads(daemon.connection_file.read_text()), "key": "cd" * 32}))
    assert daemon_main(["status", "--connection-file", str(wrong)]) == 1
    err = capsys.readouterr().err
    assert "refused the key" in err and "--connection-file" in err
    not_hex = tmp_path / "not-hex.json"
    not_hex.write_text(json.dumps({**json.loads(daemon.connection_file.read_text()), "key": "zz"}))
    assert daemon_main(["status", "--connection-file", str(not_hex)]) == 1


def test_pulling_an_unknown_id_offline_gives_advice_that_is_not_itself(tmp_path: Path):
    env = {"PATH": "", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": ":".join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "ecco_daemon.cli", "pull", "nobody/no-such-model"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "huggingface-cli download nobody/no-such-model" in done.stderr
    assert "ecco-daemon pull" not in done.stderr


def _options(parser: argparse.ArgumentParser, path: str = "") -> list[tuple[str, argparse.Action, str]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _options(child, f"{path} {name}")
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            found.append((path, action, parser.formatter_class(parser.prog)._get_help_string(action)))
    return found


@pytest.mark.parametrize("parser", [client_parser, daemon_parser], ids=["ecco-client", "ecco-daemon"])
def test_every_flag_has_help_that_shows_its_default(parser):
    for path, action, text in _options(parser()):
        assert action.help, f"{path} {action.option_strings} has no help"
        assert "default" in text, f"{path} {action.option_strings}: {text!r}"
