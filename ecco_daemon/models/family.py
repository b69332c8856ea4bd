"""Which kind of language model a config describes, and the Auto class that loads it."""

from __future__ import annotations

from typing import Any

from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM

CAUSAL = "causal"
MASKED = "masked"
ENCODER_DECODER = "encoder-decoder"

# model types that are masked LMs even when a config names no architecture
MASKED_MODEL_TYPES = frozenset(
    {
        "bert",
        "roberta",
        "distilbert",
        "albert",
        "electra",
        "deberta",
        "deberta-v2",
        "xlm-roberta",
        "camembert",
        "mpnet",
        "modernbert",
        "megatron-bert",
        "big_bird",
        "ernie",
        "roformer",
    }
)
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
AUTO_CLASSES = {
    CAUSAL: AutoModelForCausalLM,
    MASKED: AutoModelForMaskedLM,
    ENCODER_DECODER: AutoModelForSeq2SeqLM,
}


def family_of(config: Any) -> str:
    """ "causal", "masked" or "encoder-decoder", read from the config, not from a per-model table."""
    if getattr(config, "is_encoder_decoder", False):
        return ENCODER_DECODER
    architectures = list(getattr(config, "architectures", None) or [])
    if any(name.endswith("ForMaskedLM") for name in architectures):
        return MASKED
    if any(name.endswith(CAUSAL_SUFFIXES) for name in architectures):
        return CAUSAL
    if getattr(config, "model_type", None) in MASKED_MODEL_TYPES:
        return MASKED
    return CAUSAL


def auto_class_for(family: str) -> Any:
    """The transformers Auto class that builds the family's model with its LM head."""
    return AUTO_CLASSES[family]
