"""Converting a GGUF file into a plain Hugging Face folder (float32 safetensors plus tokenizer).

Why: transformers reads a GGUF by dequantizing every tensor, which takes tens of seconds; the
converted folder loads in about a second. The dequantized weights are saved in float32, so the cache
holds exactly what the GGUF loader produced, and any dtype can be chosen at load time.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import transformers
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoTokenizer
from transformers.utils import logging as hf_logging

from .errors import ModelLoadError
from .family import auto_class_for, family_of

log = logging.getLogger(__name__)

try:  # transformers >= 5 keeps GGUF weights packed unless told to dequantize
    from transformers import GgufConfig
except ImportError:  # older releases always dequantize
    GgufConfig = None


@contextlib.contextmanager
def transformers_progress(enabled: bool) -> Iterator[None]:
    """Show or hide transformers' own progress bars (per-tensor conversion) for the duration."""
    before = hf_logging.is_progress_bar_enabled()
    if enabled:
        hf_logging.enable_progress_bar()
    else:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if before:
            hf_logging.enable_progress_bar()
        else:
            hf_logging.disable_progress_bar()


def _drop_quantizer(model: torch.nn.Module) -> None:
    """Forget that the weights came from a quantized file, so save_pretrained writes plain tensors."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    elif hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def convert_gguf(gguf_path: Path, dest: Path, *, progress: bool = True) -> dict[str, Any]:
    """Dequantize ``gguf_path`` into ``dest`` as safetensors + tokenizer; return facts for the manifest."""
    folder, file_name = str(gguf_path.parent), gguf_path.name
    started = time.perf_counter()
    steps = tqdm(total=3, desc=f"Converting {file_name}", unit="step", disable=not progress)
    try:
        with steps, transformers_progress(progress):
            steps.set_postfix_str("tokenizer")
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file_name)
            steps.update()
            steps.set_postfix_str("weights")
            config = AutoConfig.from_pretrained(folder, gguf_file=file_name)
            options: dict[str, Any] = {"gguf_file": file_name, "dtype": torch.float32}
            if GgufConfig is not None:
                options["quantization_config"] = GgufConfig(dequantize=True)
            model = auto_class_for(family_of(config)).from_pretrained(folder, **options)
            _drop_quantizer(model)
            steps.update()
            steps.set_postfix_str("saving")
            model.save_pretrained(dest)
            tokenizer.save_pretrained(dest)
            steps.update()
    except ModelLoadError:
        raise
    except Exception as exc:  # transformers raises many types for unsupported or damaged files
        raise ModelLoadError(f"could not convert GGUF file {gguf_path}: {type(exc).__name__}: {exc}") from exc
    seconds = time.perf_counter() - started
    log.info("converted %s in %.1fs", gguf_path, seconds)
    return {
        "gguf": file_name,
        "gguf_bytes": gguf_path.stat().st_size,
        "architecture": str(getattr(config, "model_type", "")),
        "convert_seconds": round(seconds, 2),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
