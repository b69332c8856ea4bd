"""Decoding over a static key/value cache with a compiled step (CUDA graphs), where CUDA is present.

Why: on a GPU, eager decoding of a small model is bound by kernel launches (about 23 ms a token for the
135M SmolLM2), not by arithmetic. A transformers ``StaticCache`` gives every tensor of the one-token
decode step a fixed shape and address, so ``torch.compile(mode="reduce-overhead")`` can capture the step
as a CUDA graph and replay it. The prompt still runs eagerly (its length varies). Caches are kept per
model and per rounded length and reused, so the graph recorded for one request serves the next ones.

The per-step outputs are those of the eager loop (``generation.generate`` scores both alike). If
compiling or a compiled step fails, the request resumes eagerly and the model stays eager for good.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ecco_daemon.models.family import CAUSAL
from ecco_daemon.models.loaded import LoadedModel

log = logging.getLogger(__name__)

EXTRA_KEY = "static_decoder"  # where a model's StaticDecoder (or None: eager) lives in LoadedModel.extra
MIN_CACHE_LENGTH = 256
# Every (model, cache length) is one more compiled graph of the same step function; past dynamo's default
# limit of 8 per function it would quietly run the step uncompiled.
RECOMPILE_LIMIT = 64

StepFn = Callable[[torch.Tensor, Any], torch.Tensor]


# -- transformers across versions ---------------------------------------------------------------------


@functools.cache
def _cache_parameter(model_class: type) -> str:
    parameters = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def cache_kwargs(model: torch.nn.Module, cache: Any) -> dict[str, Any]:
    """The key/value cache argument under this transformers' name for it.

    Why: transformers 5.2x names it ``cache``; earlier 5.x (the GPU machine's 5.17) ``past_key_values``,
    and there a ``cache=`` vanishes into ``**kwargs`` and every step would run without its past.
    """
    return {_cache_parameter(type(model)): cache}


def returned_cache(out: Any) -> Any:
    """The cache a forward pass returns: ``out.cache`` (5.2x) or ``out.past_key_values`` (earlier)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def full_attention_only(config: Any) -> bool:
    """Every layer attends to the whole past: no sliding-window, linear or hybrid layers."""
    layer_types = getattr(config, "layer_types", None) or []
    return all(kind == "full_attention" for kind in layer_types) and not getattr(config, "sliding_window", None)


# -- which models, which lengths ----------------------------------------------------------------------


def supports_static_cache(lm: LoadedModel) -> bool:
    """Decoder-only, full attention, on one device, of a class transformers can compile whole."""
    model, config = lm.model, lm.model.config
    devices = set(getattr(model, "hf_device_map", None) or {"": lm.device}.values())
    return (lm.family == CAUSAL and not getattr(config, "is_encoder_decoder", False)
            and full_attention_only(config) and bool(getattr(model, "_can_compile_fullgraph", False))
            and len(devices) == 1)


def wants_static_decoding(lm: LoadedModel) -> bool:
    """The model's compile_decode setting: "auto" means only on CUDA, "on" anywhere, "off" never."""
    setting = lm.compile_decode
    if setting == "off" or (setting == "auto" and lm.device.type != "cuda"):
        return False
    return supports_static_cache(lm)


def cache_length(tokens: int) -> int:
    """The static cache length for prompt + new tokens: a power of two, at least 256.

    Why: each length is its own compiled graph; powers of two keep them few (five up to 4096 tokens)
    while attending over at most twice the positions a request needs.
    """
    return max(MIN_CACHE_LENGTH, 1 << (max(tokens, 1) - 1).bit_length())


@dataclass(frozen=True)
class CompileOptions:
    """How the decode step is compiled. The default records a CUDA graph (on the CPU inductor just
    compiles); ``backend="eager"`` runs the same dynamo path on the CPU in seconds (tests);
    ``backend=None`` leaves the step uncompiled."""

    backend: str | Callable[..., Any] | None = "inductor"
    mode: str | None = "reduce-overhead"
    fullgraph: bool = True

    def wrap(self, fn: StepFn) -> StepFn:
        if self.backend is None:
            return fn
        config = torch._dynamo.config
        limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
        setattr(config, limit, max(getattr(config, limit), RECOMPILE_LIMIT))
        mode = {"mode": self.mode} if self.mode is not None else {}
        # dynamic=False: one graph per cache length, never a shape-generic one.
        return torch.compile(fn, backend=self.backend, fullgraph=self.fullgraph, dynamic=False, **mode)


def _step_function(model: torch.nn.Module) -> StepFn:
    """One token (1, 1) through the model over its static cache; returns the logits (V,) in float32."""
    cache_arg = _cache_parameter(type(model))  # outside the traced function

    def step(token: torch.Tensor, cache: Any) -> torch.Tensor:
        out = model(input_ids=token, use_cache=True, **{cache_arg: cache})
        return out.logits[0, -1].float()

    return step


# -- the per-model decoder and one request's use of it -----------------------------------------------


class StaticDecoder:
    """One model's compiled decode step and its static caches (one per length), shared by its requests.

    One request holds it at a time (a device's worker runs one job at a time; a request that finds it
    busy decodes eagerly). The first failure sets ``failed`` for good: the model then decodes eagerly.
    """

    def __init__(self, lm: LoadedModel, options: CompileOptions | None = None) -> None:
        self.lm = lm
        self.options = options or CompileOptions()
        self.failed = False
        self.steps = 0  # steps run through the (compiled) step function: what tests and benchmarks check
        self._step: StepFn | None = None
        self._caches: dict[int, Any] = {}
        self._lock = threading.Lock()

    def open(self, tokens: int) -> StaticSteps | None:
        """A cleared cache for ``tokens`` positions, held until the returned steps close; None if busy."""
        if self.failed or not self._lock.acquire(blocking=False):
            return None
        try:
            cache = self._cache(cache_length(tokens))
        except Exception as exc:  # e.g. out of memory for the cache: this request decodes eagerly
            self._lock.release()
            self.fail(exc)
            return None
        return StaticSteps(self, cache)

    def step(self, token: torch.Tensor, cache: Any) -> torch.Tensor:
        """Logits (V,) after ``token`` (1, 1); the step is compiled on first use, per cache length after."""
        if self._step is None:
            self._step = self.options.wrap(_step_function(self.lm.model))
        # A new iteration: the last step's outputs (in the graph's memory) are no longer read.
        torch.compiler.cudagraph_mark_step_begin()
        logits = self._step(token, cache)
        self.steps += 1
        return logits

    def fail(self, exc: BaseException) -> None:
        """The static path broke: say so once, drop its caches and step, decode eagerly from now on."""
        if not self.failed:
            log.warning("%s: static-cache decoding failed (%s: %s); this model decodes eagerly from now on",
                        self.lm.name, type(exc).__name__, exc, exc_info=exc)
        self.failed = True
        self._caches.clear()
        self._step = None

    def release(self) -> None:
        self._lock.release()

    def _cache(self, length: int) -> Any:
        cache = self._caches.get(length)
        if cache is None:
            from transformers import StaticCache

            # Its tensors are made at the first prefill, with the model's dtype and device.
            cache = self._caches[length] = StaticCache(config=self.lm.model.config, max_cache_len=length)
        cache.reset()  # in place: the addresses a recorded graph uses stay the same
        return cache


class StaticSteps:
    """One request's pass over a held static cache: the prompt eagerly, then one compiled step a token."""

    def __init__(self, decoder: StaticDecoder, cache: Any) -> None:
        self.decoder = decoder
        self.cache = cache
        self._held = True

    def prompt(self, input_ids: list[int]) -> torch.Tensor:
        """Logits (V,) after the prompt, which fills the start of the cache."""
        model = self.decoder.lm.model
        ids = torch.tensor([input_ids], device=self.decoder.lm.device)  # (1, T)
        out = model(input_ids=ids, use_cache=True, **cache_kwargs(model, self.cache))
        return out.logits[0, -1].float()

    def step(self, token_id: int) -> torch.Tensor:
        """Logits (V,) after ``token_id``."""
        return self.decoder.step(torch.tensor([[token_id]], device=self.decoder.lm.device), self.cache)

    def fail(self, exc: BaseException) -> None:
        self.close()
        self.decoder.fail(exc)

    def close(self) -> None:
        if self._held:
            self._held = False
            self.decoder.release()


def static_decoder(lm: LoadedModel) -> StaticDecoder | None:
    """The model's static decoder if its setting, device and architecture call for one and it has not failed."""
    if EXTRA_KEY not in lm.extra:
        lm.extra.setdefault(EXTRA_KEY, StaticDecoder(lm) if wants_static_decoding(lm) else None)
    decoder = lm.extra[EXTRA_KEY]
    return decoder if decoder is not None and not decoder.failed else None


def install_static_decoder(lm: LoadedModel, options: CompileOptions) -> StaticDecoder:
    """Decode this model over a static cache with these compile options, whatever its setting or device
    (tests and benchmarks choose the backend)."""
    if not supports_static_cache(lm):
        raise ValueError(f"{lm.name} cannot decode over a static cache")
    decoder = lm.extra[EXTRA_KEY] = StaticDecoder(lm, options)
    return decoder
