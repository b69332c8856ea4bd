"""The model families (the one enumeration, as spelled on the wire), which one a config describes, and the
Auto class that loads it.

Why one place: the loader, decoding and the analyses all branch on the family, and the name reaches
clients twice (``models.list`` and an analysis result's ``family``); one spelling keeps them equal.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM

Family = Literal["causal", "masked", "encoder-decoder"]
CAUSAL: Final = "causal"
MASKED: Final = "masked"
ENCODER_DECODER: Final = "encoder-decoder"
FAMILIES: Final[tuple[Family, ...]] = (CAUSAL, MASKED, ENCODER_DECODER)

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


def family_of(config: Any) -> Family:
    """The family read from the config, not from a per-model table."""
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


def auto_class_for(family: Family) -> Any:
    """The transformers Auto class that builds the family's model with its LM head."""
    return AUTO_CLASSES[family]
