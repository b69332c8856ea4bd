"""Architecture inspection finds each family's parts from the module tree, or names what it missed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ecco_daemon.analysis.architecture import ARCHITECTURE_OVERRIDES, inspect_architecture
from ecco_daemon.analysis.capture import capture_forward
from ecco_daemon.analysis.errors import UnsupportedModel
from ecco_daemon.models.family import CAUSAL, ENCODER_DECODER, MASKED
from tests.analysis_inputs import text_sequence
from tests.tiny_models import FAMILIES, load_tiny_model

EXPECTED = {
    "gpt2": (CAUSAL, "transformer.ln_f", "lm_head", "transformer.h", "transformer.h.0.mlp.c_proj"),
    "llama": (CAUSAL, "model.norm", "lm_head", "model.layers", "model.layers.0.mlp.down_proj"),
    "gpt_neox": (
        CAUSAL,
        "gpt_neox.final_layer_norm",
        "lm_head",
        "gpt_neox.layers",
        "gpt_neox.layers.0.mlp.dense_4h_to_h",
    ),
    "bert": (MASKED, "", "cls", "bert.encoder.layer", "bert.encoder.layer.0.output.dense"),
    "t5": (
        ENCODER_DECODER,
        "decoder.final_layer_norm",
        "lm_head",
        "decoder.block",
        "decoder.block.0.layer.2.DenseReluDense.wo",
    ),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_parts_found_by_inspection(family: str) -> None:
    model, _tokenizer = load_tiny_model(family)
    arch = inspect_architecture(model)
    family_kind, norm, unembedding, layers, mlp = EXPECTED[family]
    assert arch.family == family_kind
    assert arch.final_norm_path == norm
    assert arch.unembedding_path == unembedding
    assert arch.decoder.path == layers
    assert arch.decoder.mlp_down_paths[0] == mlp
    assert arch.n_layers == 2 and len(arch.decoder.mlp_down) == 2
    assert arch.input_embedding is model.get_input_embeddings()
    assert all(
        module is not None and "attention" in type(module).__name__.lower()
        for module in arch.decoder.attention
    )
    assert arch.describe()["family"] == family_kind


def test_bert_unembedding_includes_the_prediction_head_transform() -> None:
    model, _ = load_tiny_model("bert")
    arch = inspect_architecture(model)
    assert arch.unembedding is model.cls
    assert any(module is model.cls.predictions.transform for module in arch.unembedding.modules())


def test_t5_encoder_stack_and_decoder_output_scale() -> None:
    model, _ = load_tiny_model("t5")
    arch = inspect_architecture(model)
    assert arch.encoder is not None and arch.encoder.path == "encoder.block"
    assert arch.encoder.mlp_down_paths[1] == "encoder.block.1.layer.1.DenseReluDense.wo"
    assert arch.unembed_input_scale == pytest.approx(model.config.d_model**-0.5, rel=1e-4)
    assert arch.decoder_start_token_id == model.config.decoder_start_token_id


class OpaqueProjection(nn.Module):
    """A down projection that is neither nn.Linear nor Conv1D, so inspection cannot recognise it."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach().clone())  # (in, out)
        self.bias = nn.Parameter(conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight + self.bias


def test_unreadable_model_names_the_missing_part_and_an_override_fixes_it() -> None:
    model, tokenizer = load_tiny_model("gpt2")
    for block in model.transformer.h:
        block.mlp.c_proj = OpaqueProjection(block.mlp.c_proj)
    with pytest.raises(UnsupportedModel) as info:
        inspect_architecture(model)
    assert "MLP activation point" in str(info.value) and "transformer.h.0" in str(info.value)
    assert info.value.code == "UNSUPPORTED_MODEL"

    arch = inspect_architecture(model, {"mlp_down": "mlp.c_proj"})
    assert arch.decoder.mlp_down_paths[0] == "transformer.h.0.mlp.c_proj"
    seq = text_sequence(arch, tokenizer, "The cat sat.")
    captured = capture_forward(model, arch, seq)
    assert captured.activations.shape == (2, seq.n_tokens, 4 * arch.hidden_size)

    ARCHITECTURE_OVERRIDES["gpt2"] = {"mlp_down": "mlp.c_proj"}  # the same, as a registered override
    try:
        assert inspect_architecture(model).overrides_used == {"mlp_down": "mlp.c_proj"}
    finally:
        del ARCHITECTURE_OVERRIDES["gpt2"]


def test_a_model_without_transformer_parts_is_unsupported() -> None:
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10))
    with pytest.raises(UnsupportedModel) as info:
        inspect_architecture(model)
    message = str(info.value)
    for part in ("model family", "input embedding", "unembedding", "decoder layer list"):
        assert part in message
    with pytest.raises(ValueError, match="unknown override keys"):
        inspect_architecture(model, {"lm_head": "1"})


def test_wrong_override_is_caught_by_the_probe() -> None:
    model, _ = load_tiny_model("llama")
    with pytest.raises(UnsupportedModel, match="reproduce the model's logits"):
        inspect_architecture(model, {"final_norm": ""})  # claims no final norm: the lens would be wrong
