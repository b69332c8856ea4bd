"""The tiny test models build quickly, deterministically, and load back through from_pretrained."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM, AutoTokenizer

from tests.tiny_models import FAMILIES, build_tiny_model

AUTO_CLASS = {
    "gpt2": AutoModelForCausalLM,
    "llama": AutoModelForCausalLM,
    "gpt_neox": AutoModelForCausalLM,
    "bert": AutoModelForMaskedLM,
    "t5": AutoModelForSeq2SeqLM,
}


@pytest.mark.parametrize("family", FAMILIES)
def test_builds_and_round_trips(family: str, tmp_path: Path) -> None:
    started = time.perf_counter()
    dest = build_tiny_model(family, tmp_path / family)
    assert time.perf_counter() - started < 10
    tokenizer = AutoTokenizer.from_pretrained(dest)
    model = AUTO_CLASS[family].from_pretrained(dest).eval()
    assert model.config.vocab_size == len(tokenizer)
    text = "The capital of France is Paris."
    ids = tokenizer(text, return_tensors="pt").input_ids
    assert tokenizer.decode(ids[0], skip_special_tokens=True) == text
    with torch.no_grad():
        if family == "t5":
            out = model(input_ids=ids, decoder_input_ids=ids[:, :3])
        else:
            out = model(input_ids=ids)
    assert out.logits.shape[-1] == model.config.vocab_size
    assert torch.isfinite(out.logits).all()


def test_special_tokens(tmp_path: Path) -> None:
    bert = AutoTokenizer.from_pretrained(build_tiny_model("bert", tmp_path / "bert"))
    ids = bert("hello world").input_ids
    assert ids[0] == bert.cls_token_id and ids[-1] == bert.sep_token_id
    assert bert.mask_token_id is not None and bert.pad_token_id is not None
    t5 = AutoTokenizer.from_pretrained(build_tiny_model("t5", tmp_path / "t5"))
    assert t5("hello").input_ids[-1] == t5.eos_token_id and t5.pad_token_id is not None
    gpt2 = AutoTokenizer.from_pretrained(build_tiny_model("gpt2", tmp_path / "gpt2"))
    assert gpt2.bos_token_id is not None and gpt2.eos_token_id is not None


def test_deterministic(tmp_path: Path) -> None:
    first = AutoModelForCausalLM.from_pretrained(build_tiny_model("llama", tmp_path / "a"))
    second = AutoModelForCausalLM.from_pretrained(build_tiny_model("llama", tmp_path / "b"))
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_unknown_family(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid: gpt2"):
        build_tiny_model("mamba", tmp_path)
