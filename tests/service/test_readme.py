"""The README's Python snippets run against a real daemon (tiny Llama, served as "smollm2-135m", its
tokenizer knowing the words the README watches), so they cannot drift from the code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tokenizers import AddedToken
from transformers import AutoModelForCausalLM, AutoTokenizer

import ecco_client
from tests.daemon_process import DaemonProcess
from tests.readme_blocks import run_readme

WATCHED = [" Paris", " London", " Berlin"]  # README: rankings_watch and foils take single tokens


def with_words(model_dir: Path, words: list[str], dest: Path) -> Path:
    """A copy of a tiny model whose tokenizer has each word as one token (the embeddings grown for them)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.add_tokens([AddedToken(word, normalized=False) for word in words])
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.resize_token_embeddings(len(tokenizer))
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


@pytest.fixture(scope="module")
def readme_daemon(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    model = with_words(tiny_llama, WATCHED, tmp_path_factory.mktemp("readme-model"))
    with DaemonProcess(tmp_path_factory.mktemp("readme-daemon"), []) as daemon:
        with ecco_client.connect(connection_file=daemon.connection_file, timeout=60, progress=False) as client:
            client.load_model(str(model), name="smollm2-135m")
        yield daemon


def test_the_readmes_python_runs(readme_daemon: DaemonProcess, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECCO_CONNECTION_FILE", str(readme_daemon.connection_file))
    monkeypatch.chdir(tmp_path)
    namespace = run_readme()
    page = (tmp_path / "paris.html").read_text()
    for title in ("Probability", "Saliency", "Layer predictions", "Rankings", "Neuron factors"):
        assert title in page
    out = namespace["out"]
    assert out.tokens[namespace["paris"]] == out.generated_tokens[0]
    assert out.rankings_watch(watch=WATCHED, position=namespace["paris"]).data["watch"][0]["text"] == " Paris"
