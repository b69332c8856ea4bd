"""Spec resolution, dtype and device parsing, family detection and the cache/state paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ecco_protocol.connection_file import default_state_dir
from transformers import BertConfig, GPT2Config, LlamaConfig, T5Config

from ecco_daemon.models import paths
from ecco_daemon.models.embedded import DEFAULT_MODEL, SMOLLM2_135M
from ecco_daemon.models.errors import ModelLoadError
from ecco_daemon.models.family import CAUSAL, ENCODER_DECODER, MASKED, family_of
from ecco_daemon.models.options import default_device, dtype_name, parse_device, parse_dtype
from ecco_daemon.models.spec import resolve_spec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("float32", torch.float32),
        ("fp32", torch.float32),
        ("bfloat16", torch.bfloat16),
        ("BF16", torch.bfloat16),
        ("float16", torch.float16),
        ("torch.float16", torch.float16),
        ("half", torch.float16),
        (None, torch.float32),
        (torch.bfloat16, torch.bfloat16),
    ],
)
def test_parse_dtype_accepts_names_and_aliases(text, expected):
    assert parse_dtype(text) == expected


def test_parse_dtype_auto_keeps_the_checkpoint_dtype():
    assert parse_dtype("auto") == "auto"
    assert parse_dtype(" Auto ") == "auto"


@pytest.mark.parametrize("bad", ["float64", "int8", "fp8", "", torch.int64])
def test_parse_dtype_rejects_unknown_with_the_valid_choices(bad):
    with pytest.raises(ModelLoadError, match="float32, bfloat16, float16, auto"):
        parse_dtype(bad)


def test_dtype_name_is_plain():
    assert dtype_name(torch.bfloat16) == "bfloat16"


def test_parse_device_defaults_to_cuda_when_present_else_cpu():
    expected = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    assert parse_device(None) == expected == default_device()
    assert parse_device("cpu") == torch.device("cpu")
    assert parse_device("auto") == "auto"


def test_parse_device_refuses_a_gpu_this_machine_lacks():
    if torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="sees only"):
            parse_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ModelLoadError, match="no CUDA GPU"):
            parse_device("cuda")


def test_parse_device_rejects_nonsense():
    with pytest.raises(ModelLoadError, match="unknown device"):
        parse_device("gpu-please")


@pytest.mark.parametrize("device", ["meta", "xpu", "lazy"])
def test_parse_device_refuses_devices_that_cannot_run_a_model(device):
    """Found by the fuzzer: a model "loaded" on the meta device answered every request INTERNAL."""
    with pytest.raises(ModelLoadError, match="cannot run a model"):
        parse_device(device)


def test_alias_resolves_case_insensitively():
    spec = resolve_spec(" SmolLM2-135M ")
    assert spec.kind == "alias"
    assert spec.embedded is SMOLLM2_135M
    assert spec.default_name == DEFAULT_MODEL == "smollm2-135m"
    assert spec.source == "SmolLM2-135M"


def test_folder_with_config_resolves_to_folder(tmp_path: Path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    spec = resolve_spec(str(folder))
    assert (spec.kind, spec.path, spec.default_name) == ("folder", folder.resolve(), "my-model")
    assert spec.source == str(folder.resolve())


def test_relative_paths_resolve_to_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "weights.gguf").write_bytes(b"GGUF")
    monkeypatch.chdir(tmp_path)
    spec = resolve_spec("weights.gguf")
    assert (spec.kind, spec.path, spec.default_name) == ("gguf", tmp_path / "weights.gguf", "weights")


def test_folder_with_one_gguf_resolves_to_that_file(tmp_path: Path):
    (tmp_path / "only.gguf").write_bytes(b"GGUF")
    spec = resolve_spec(str(tmp_path))
    assert (spec.kind, spec.path) == ("gguf", tmp_path / "only.gguf")


def test_folder_with_two_ggufs_asks_which(tmp_path: Path):
    (tmp_path / "a.gguf").write_bytes(b"GGUF")
    (tmp_path / "b.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelLoadError, match=r"several GGUF files \(a.gguf, b.gguf\)"):
        resolve_spec(str(tmp_path))


def test_folder_without_a_model_is_refused(tmp_path: Path):
    with pytest.raises(ModelLoadError, match="holds no model"):
        resolve_spec(str(tmp_path))


def test_file_that_is_not_gguf_is_refused(tmp_path: Path):
    other = tmp_path / "model.bin"
    other.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="not a .gguf"):
        resolve_spec(str(other))


@pytest.mark.parametrize(
    "missing", ["./nowhere", "/no/such/dir", "missing-file.gguf", "~/no-such-model-here"]
)
def test_missing_paths_are_reported_as_missing_not_as_hub_ids(missing: str):
    with pytest.raises(ModelLoadError, match="no such model file or folder"):
        resolve_spec(missing)


@pytest.mark.parametrize("hub_id", ["gpt2", "HuggingFaceTB/SmolLM2-135M-Instruct", "org/model.v2_x"])
def test_hub_ids_resolve_to_hub(hub_id: str):
    spec = resolve_spec(hub_id)
    assert (spec.kind, spec.path, spec.source, spec.default_name) == ("hub", None, hub_id, hub_id)


@pytest.mark.parametrize("bad", ["", "   ", "two words", "a/b/c/../d?", "org/name:tag"])
def test_unusable_specs_are_refused(bad: str):
    with pytest.raises(ModelLoadError):
        resolve_spec(bad)


def test_family_from_config():
    assert family_of(LlamaConfig(architectures=["LlamaForCausalLM"])) == CAUSAL
    assert family_of(GPT2Config(architectures=["GPT2LMHeadModel"])) == CAUSAL
    assert family_of(LlamaConfig()) == CAUSAL  # no architectures: causal by default
    assert family_of(BertConfig(architectures=["BertForMaskedLM"])) == MASKED
    assert family_of(BertConfig()) == MASKED  # by model_type when no architecture is named
    assert family_of(T5Config()) == ENCODER_DECODER


def test_paths_follow_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ECCO_DAEMON_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("ECCO_DAEMON_HOME", str(tmp_path / "h"))
    assert paths.cache_dir() == tmp_path / "c"
    assert paths.models_cache_dir() == tmp_path / "c" / "models"
    assert default_state_dir() == tmp_path / "h"


def test_paths_default_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for variable in ("ECCO_DAEMON_CACHE", "ECCO_DAEMON_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.cache_dir() == tmp_path / ".cache" / "ecco-daemon"
    assert default_state_dir() == tmp_path / ".local" / "share" / "ecco-daemon"
