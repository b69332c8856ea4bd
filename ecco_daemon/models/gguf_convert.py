"""Converting a GGUF file into a plain Hugging Face folder (float32 safetensors plus tokenizer).

Why: transformers reads a GGUF by dequantizing every tensor, which takes tens of seconds; the
converted folder loads in about a second. The dequantized weights are saved in float32, so the cache
holds exactly what the GGUF loader produced, and any dtype can be chosen at load time.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import transformers
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoTokenizer
from transformers.utils import logging as hf_logging

from ecco_daemon.models.errors import ModelLoadError
from ecco_daemon.models.family import CAUSAL, ENCODER_DECODER, Family, auto_class_for, family_of

log = logging.getLogger(__name__)

GGUF_STRING = 8  # the GGUF value type of a string

try:  # transformers >= 5 keeps GGUF weights packed unless told to dequantize
    from transformers import GgufConfig
except ImportError:  # older releases always dequantize
    GgufConfig = None


@contextlib.contextmanager
def transformers_progress(enabled: bool) -> Iterator[None]:
    """Show or hide transformers' own progress bars (weights, per-tensor conversion) for the duration.

    The GGUF reader draws a plain tqdm that transformers' switch does not reach, so that module's
    ``tqdm`` is swapped for a silent one while hidden. Loads are serialized by the model registry.
    """
    before = hf_logging.is_progress_bar_enabled()
    gguf_module = sys.modules.get("transformers.modeling_gguf_pytorch_utils")
    if gguf_module is None and not enabled:
        gguf_module = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
    original_tqdm = getattr(gguf_module, "tqdm", None)
    if enabled:
        hf_logging.enable_progress_bar()
    else:
        hf_logging.disable_progress_bar()
        if original_tqdm is not None:
            gguf_module.tqdm = functools.partial(original_tqdm, disable=True)
    try:
        yield
    finally:
        if original_tqdm is not None:
            gguf_module.tqdm = original_tqdm
        if before:
            hf_logging.enable_progress_bar()
        else:
            hf_logging.disable_progress_bar()


def gguf_architecture(path: Path) -> str | None:
    """The file's ``general.architecture``, read from the header alone.

    Why: parsing the whole metadata (49k tokens and merges for SmolLM2) takes seconds, and the
    architecture, which llama.cpp writes as the first key, is all that is needed to pick the model class.
    None when the file does not start that way; the caller then asks transformers.
    """
    with path.open("rb") as handle:
        header = handle.read(4096)
    if len(header) < 24 or header[:4] != b"GGUF":
        return None
    version, _tensors, kv_count = struct.unpack_from("<IQQ", header, 4)
    if version < 2 or kv_count < 1:
        return None
    try:
        (key_length,) = struct.unpack_from("<Q", header, 24)
        key = header[32 : 32 + key_length].decode("utf-8")
        position = 32 + key_length
        (value_type,) = struct.unpack_from("<I", header, position)
        if key != "general.architecture" or value_type != GGUF_STRING:
            return None
        (value_length,) = struct.unpack_from("<Q", header, position + 4)
        value = header[position + 12 : position + 12 + value_length]
        return value.decode("utf-8") if len(value) == value_length else None
    except (struct.error, UnicodeDecodeError):
        return None


def gguf_family(path: Path) -> Family:
    """The model family a GGUF holds: T5 files are encoder-decoder, the rest causal LMs."""
    architecture = gguf_architecture(path)
    if architecture is None:
        config = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
        return family_of(config)
    return ENCODER_DECODER if architecture.startswith("t5") else CAUSAL


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
            options: dict[str, Any] = {"gguf_file": file_name, "dtype": torch.float32}
            if GgufConfig is not None:
                options["quantization_config"] = GgufConfig(dequantize=True)
            model = auto_class_for(gguf_family(gguf_path)).from_pretrained(folder, **options)
            config = model.config
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
