"""Tiny random transformer models with a small real tokenizer, built in code for tests.

Why: tests must run without the model hub. Each family gets a 2-layer model from its config with
deterministic random weights (seed 0) and a byte-level BPE tokenizer trained on a fixed English
corpus, so that text really tokenizes and decodes. Everything is saved with ``save_pretrained`` so
the same loading path as for real models (``from_pretrained`` on a folder) is exercised.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

FAMILIES = ("gpt2", "llama", "gpt_neox", "bert", "t5")

CORPUS = [
    "The capital of France is Paris. The capital of Germany is Berlin.",
    "The quick brown fox jumps over the lazy dog.",
    "A language model predicts the next token from the tokens before it.",
    "Hello world! This is a small test of the tokenizer and the model.",
    "The cat sat on the mat, and the dog slept by the door.",
    "Numbers like 1, 2, 3, 10 and 42 appear in text too.",
    "Paris is a city in France; Berlin is a city in Germany; Rome is in Italy.",
    "She said that he would come back tomorrow morning with the books.",
    "Transformers use attention, layers, heads, and neurons to compute their outputs.",
    "What is the answer? The answer is in the question, as always.",
]

CAUSAL_SPECIALS = ["<|endoftext|>", "<pad>"]
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
T5_SPECIALS = ["<pad>", "</s>", "<unk>"]
VOCAB_SIZE = 384


def _train_bpe(special_tokens: list[str]) -> Tokenizer:
    """Train a byte-level BPE on the fixed corpus; specials get the first ids in list order."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    return tokenizer


def build_tokenizer(family: str) -> PreTrainedTokenizerFast:
    """A fast tokenizer with the special tokens the family expects."""
    if family == "bert":
        tok = _train_bpe(BERT_SPECIALS)
        cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tok,
            unk_token="[UNK]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
            pad_token="[PAD]",
        )
    if family == "t5":
        tok = _train_bpe(T5_SPECIALS)
        eos_id = tok.token_to_id("</s>")
        tok.post_processor = processors.TemplateProcessing(
            single="$A </s>", pair="$A </s> $B:1 </s>:1", special_tokens=[("</s>", eos_id)]
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
        )
    tok = _train_bpe(CAUSAL_SPECIALS)
    if family == "llama":  # like SmolLM2's GGUF tokenizer, Llama prepends its BOS; GPT-2 and NeoX do not
        bos_id = tok.token_to_id("<|endoftext|>")
        tok.post_processor = processors.TemplateProcessing(
            single="<|endoftext|> $A",
            pair="<|endoftext|> $A $B:1",
            special_tokens=[("<|endoftext|>", bos_id)],
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<pad>"
    )


def _build_model(family: str, tokenizer: PreTrainedTokenizerFast) -> torch.nn.Module:
    vocab = len(tokenizer)
    if family == "gpt2":
        config = GPT2Config(
            vocab_size=vocab,
            n_positions=128,
            n_embd=32,
            n_layer=2,
            n_head=4,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        return GPT2LMHeadModel(config)
    if family == "llama":
        config = LlamaConfig(
            vocab_size=vocab,
            hidden_size=48,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=True,
        )
        return LlamaForCausalLM(config)
    if family == "gpt_neox":
        config = GPTNeoXConfig(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=128,
            rotary_pct=0.5,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
        )
        return GPTNeoXForCausalLM(config)
    if family == "bert":
        config = BertConfig(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=128,
            pad_token_id=tokenizer.pad_token_id,
        )
        return BertForMaskedLM(config)
    if family == "t5":
        config = T5Config(
            vocab_size=vocab,
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_decoder_layers=2,
            num_heads=4,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
        )
        return T5ForConditionalGeneration(config)
    raise ValueError(f"unknown tiny model family {family!r}; valid: {', '.join(FAMILIES)}")


def build_tiny_model(family: str, dest: Path) -> Path:
    """Build and save a tiny random model of ``family`` with its tokenizer into ``dest``; return ``dest``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown tiny model family {family!r}; valid: {', '.join(FAMILIES)}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(family)
    torch.manual_seed(0)
    model = _build_model(family, tokenizer).eval()
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


AUTO_CLASSES = {
    "gpt2": "AutoModelForCausalLM",
    "llama": "AutoModelForCausalLM",
    "gpt_neox": "AutoModelForCausalLM",
    "bert": "AutoModelForMaskedLM",
    "t5": "AutoModelForSeq2SeqLM",
}
_CACHE_DIR: Path | None = None


def tiny_model_dir(family: str) -> Path:
    """A built tiny model folder, shared by every test of this process (built once per family)."""
    global _CACHE_DIR
    import tempfile

    if _CACHE_DIR is None:
        _CACHE_DIR = Path(tempfile.mkdtemp(prefix="ecco-tiny-models-"))
    dest = _CACHE_DIR / family
    if not (dest / "config.json").exists():
        build_tiny_model(family, dest)
    return dest


def load_tiny_model(family: str, attn_implementation: str | None = "eager"):
    """(model in eval mode, tokenizer) of a tiny model, loaded fresh from its saved folder."""
    import transformers

    path = tiny_model_dir(family)
    auto = getattr(transformers, AUTO_CLASSES[family])
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    model = auto.from_pretrained(path, **kwargs).eval()
    return model, transformers.AutoTokenizer.from_pretrained(path)
