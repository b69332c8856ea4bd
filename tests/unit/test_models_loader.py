"""load_model on tiny random models saved as folders: families, dtypes, devices, options and errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import huggingface_hub.constants
import msgpack
import pytest
import torch
from transformers import AutoModelForCausalLM

from ecco_daemon.models import LoadedModel, ModelLoadError, load_model, pull_model
from ecco_daemon.models.cache import ModelCache
from ecco_daemon.models.family import CAUSAL, ENCODER_DECODER, MASKED

EXPECTED = {
    "gpt2": (CAUSAL, "GPT2LMHeadModel"),
    "llama": (CAUSAL, "LlamaForCausalLM"),
    "gpt_neox": (CAUSAL, "GPTNeoXForCausalLM"),
    "bert": (MASKED, "BertForMaskedLM"),
    "t5": (ENCODER_DECODER, "T5ForConditionalGeneration"),
}


def load(folder: Path, tmp_path: Path, **options) -> LoadedModel:
    return load_model(str(folder), progress=False, cache=ModelCache(tmp_path / "cache"), **options)


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_each_family_loads_with_its_head(family: str, tiny_model_factory, tmp_path: Path):
    folder = tiny_model_factory(family)
    lm = load(folder, tmp_path)
    expected_family, expected_class = EXPECTED[family]
    assert lm.family == expected_family
    assert type(lm.model).__name__ == expected_class
    assert not lm.model.training
    assert not any(p.requires_grad for p in lm.model.parameters())
    assert lm.device == torch.device("cpu") and lm.dtype == torch.float32
    assert lm.source == str(folder.resolve()) and lm.name == folder.name
    assert not (tmp_path / "cache").exists(), "a plain folder needs no cache entry"


@pytest.mark.parametrize("family", ["llama", "bert", "t5"])
def test_describe_is_msgpack_able_and_true(family: str, tiny_model_factory, tmp_path: Path):
    lm = load(tiny_model_factory(family), tmp_path, name="tiny")
    facts = msgpack.unpackb(msgpack.packb(lm.describe()))
    assert facts["name"] == "tiny"
    assert facts["family"] == EXPECTED[family][0]
    assert facts["model_type"] == family
    assert facts["n_layers"] == 2
    assert facts["vocab_size"] == lm.model.config.vocab_size
    assert facts["parameters"] == sum(p.numel() for p in lm.model.parameters())
    assert (facts["device"], facts["dtype"]) == ("cpu", "float32")


def test_frozen_weights_still_give_gradients_wrt_input_embeddings(tiny_model_factory, tmp_path: Path):
    """Attributions differentiate the output with respect to the input embeddings, not the weights."""
    lm = load(tiny_model_factory("llama"), tmp_path)
    ids = lm.tokenizer("The capital of France is", return_tensors="pt").input_ids
    embeddings = lm.model.get_input_embeddings()(ids).detach().requires_grad_(True)  # (1, T, C)
    logits = lm.model(inputs_embeds=embeddings).logits  # (1, T, V)
    logits[0, -1].max().backward()
    assert embeddings.grad is not None and embeddings.grad.abs().sum() > 0
    assert all(p.grad is None for p in lm.model.parameters())


def test_loaded_model_matches_plain_from_pretrained(tiny_model_factory, tmp_path: Path):
    folder = tiny_model_factory("gpt2")
    lm = load(folder, tmp_path)
    reference = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = lm.tokenizer("Hello world!", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(lm.model(ids).logits, reference(ids).logits)


@pytest.mark.parametrize(("dtype", "expected"), [("bfloat16", torch.bfloat16), ("float16", torch.float16)])
def test_dtype_option(dtype: str, expected: torch.dtype, tiny_model_factory, tmp_path: Path):
    lm = load(tiny_model_factory("llama"), tmp_path, dtype=dtype)
    assert lm.dtype == expected
    assert {p.dtype for p in lm.model.parameters()} == {expected}
    assert lm.describe()["dtype"] == dtype


def test_dtype_auto_keeps_the_checkpoint_dtype(tiny_model_factory, tmp_path: Path):
    folder = tmp_path / "bf16"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_factory("llama")).to(torch.bfloat16)
    model.save_pretrained(folder)
    shutil.copy(tiny_model_factory("llama") / "tokenizer.json", folder)
    shutil.copy(tiny_model_factory("llama") / "tokenizer_config.json", folder)
    assert load(folder, tmp_path, dtype="auto").dtype == torch.bfloat16
    assert load(folder, tmp_path).dtype == torch.float32  # the default converts


def test_attn_implementation_passes_through(tiny_model_factory, tmp_path: Path):
    lm = load(tiny_model_factory("llama"), tmp_path, attn_implementation="eager")
    assert lm.model.config._attn_implementation == "eager"
    ids = lm.tokenizer("Hello world!", return_tensors="pt").input_ids
    with torch.no_grad():
        attentions = lm.model(ids, output_attentions=True).attentions
    assert len(attentions) == 2 and attentions[0].shape == (1, 4, ids.shape[1], ids.shape[1])


def test_device_map_auto_places_every_module(tiny_model_factory, tmp_path: Path):
    lm = load(tiny_model_factory("llama"), tmp_path, device="auto")
    assert lm.extra["device_map"], "accelerate's placement is recorded"
    expected = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    assert lm.device == expected
    ids = lm.tokenizer("Hello", return_tensors="pt").input_ids.to(lm.device)
    with torch.no_grad():
        assert lm.model(ids).logits.shape[-1] == lm.model.config.vocab_size


def test_stop_tokens_come_from_tokenizer_and_config(tiny_model_factory, tmp_path: Path):
    lm = load(tiny_model_factory("llama"), tmp_path)
    assert lm.tokenizer.eos_token_id in lm.stop_token_ids
    assert isinstance(lm.stop_token_ids, frozenset)
    t5 = load(tiny_model_factory("t5"), tmp_path)
    assert t5.stop_token_ids == {t5.tokenizer.convert_tokens_to_ids("</s>")}


def test_broken_folder_gives_model_load_error(tiny_model_factory, tmp_path: Path):
    folder = tmp_path / "broken"
    shutil.copytree(tiny_model_factory("llama"), folder)
    (folder / "config.json").write_text("{ this is not json")
    with pytest.raises(ModelLoadError, match=r"could not load '.*broken'"):
        load(folder, tmp_path)


def test_folder_without_weights_gives_model_load_error(tiny_model_factory, tmp_path: Path):
    folder = tmp_path / "no-weights"
    shutil.copytree(tiny_model_factory("llama"), folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="could not load"):
        load(folder, tmp_path)


def test_bad_options_fail_before_any_loading(tiny_model_factory, tmp_path: Path):
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        load(tiny_model_factory("llama"), tmp_path, dtype="float64")
    with pytest.raises(ModelLoadError, match="unknown device"):
        load(tiny_model_factory("llama"), tmp_path, device="warp-drive")


def test_unreachable_hub_gives_a_helpful_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelLoadError) as caught:
        load_model("ecco-test/does-not-exist", progress=False, cache=ModelCache(tmp_path))
    message = str(caught.value)
    assert "'ecco-test/does-not-exist'" in message
    assert "pass its local folder" in message and "HF_HUB_OFFLINE" in message


def test_pull_of_a_folder_returns_it(tiny_model_factory, tmp_path: Path):
    folder = tiny_model_factory("gpt2")
    assert pull_model(str(folder), progress=False, cache=ModelCache(tmp_path)) == folder.resolve()


def test_pull_of_an_unreachable_hub_id_gives_a_helpful_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelLoadError, match="could not download 'ecco-test/does-not-exist' .*local folder"):
        pull_model("ecco-test/does-not-exist", progress=False, cache=ModelCache(tmp_path))
