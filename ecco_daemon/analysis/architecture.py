"""Find the parts of a transformer the analyses need by inspecting its module tree.

Why: Ecco kept a YAML entry per model. Here the family, embedding, final norm, unembedding, layer
list, MLP activation point and attention modules are found from the structure every Hugging Face
model shares, and one small probe forward checks that "final norm, then unembedding" reproduces the
model's own logits. A model the inspection cannot read can be described by a YAML-free override
(dotted module paths); anything still missing raises ``UnsupportedModel`` naming the missing parts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ecco_daemon.analysis.errors import UnsupportedModel
from ecco_daemon.analysis.projection import project
from ecco_daemon.models.family import CAUSAL, ENCODER_DECODER, FAMILIES, MASKED, Family

# Parts that may be overridden, by model_type. Paths are dotted module names from the top model; the
# per-layer paths ("mlp_down", "attention") are relative to each layer. Keep this short: it is for models
# the inspection cannot read, not a per-model table.
ARCHITECTURE_OVERRIDES: dict[str, dict[str, str]] = {}

OVERRIDE_KEYS = ("family", "layers", "final_norm", "unembedding", "mlp_down", "attention")


@dataclass
class Stack:
    """One stack of transformer layers (the decoder, or the encoder of an encoder-decoder)."""

    path: str
    layers: list[nn.Module]
    layer_paths: list[str]
    mlp_down: list[nn.Module]  # the module whose *input* is the MLP activation, per layer
    mlp_down_paths: list[str]
    attention: list[nn.Module | None]
    intermediate_size: int


@dataclass
class Architecture:
    """What the analyses need from a model. Holds references into the shared model; never mutates it."""

    model_type: str
    family: Family
    input_embedding: nn.Module
    final_norm: nn.Module  # nn.Identity when the model has none (post-norm BERT)
    final_norm_path: str
    unembedding: nn.Module  # maps the final-normed state to logits (BERT: transform + decoder)
    unembedding_path: str
    decoder: Stack  # the stack whose states the logit lens reads (the only stack for causal/masked)
    encoder: Stack | None = None
    hidden_size: int = 0
    vocab_size: int = 0
    unembed_input_scale: float = 1.0  # constant between final norm and unembedding (T5: d_model ** -0.5)
    decoder_start_token_id: int | None = None  # encoder-decoder only
    overrides_used: dict[str, str] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return len(self.decoder.layers)

    def lens_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits of a residual-stream state: final norm with the state's own statistics, then unembed.

        hidden: (..., H) -> (..., V)
        """
        normed = self.final_norm(hidden)
        if self.unembed_input_scale != 1.0:
            normed = normed * self.unembed_input_scale
        return project(self.unembedding, normed)

    def describe(self) -> dict[str, Any]:
        """Plain facts for status replies and error messages."""
        return {
            "model_type": self.model_type,
            "family": self.family,
            "n_layers": self.n_layers,
            "hidden_size": self.hidden_size,
            "vocab_size": self.vocab_size,
            "intermediate_size": self.decoder.intermediate_size,
            "final_norm": self.final_norm_path or "(none)",
            "unembedding": self.unembedding_path,
            "layers": self.decoder.path,
            "mlp_activation_point": self.decoder.mlp_down_paths[0] if self.decoder.mlp_down_paths else "",
        }


# --------------------------------------------------------------------------------------------- helpers


def _is_norm(module: nn.Module) -> bool:
    name = type(module).__name__.lower()
    return isinstance(module, nn.LayerNorm | nn.RMSNorm) or name.endswith("norm") or "layernorm" in name


def _linear_shape(module: nn.Module) -> tuple[int, int] | None:
    """(in_features, out_features) of a linear-like module (nn.Linear or GPT-2's Conv1D)."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if type(module).__name__ == "Conv1D" and hasattr(module, "nf"):
        weight = module.weight  # (in, out)
        return int(weight.shape[0]), int(weight.shape[1])
    return None


def _get(model: nn.Module, path: str) -> nn.Module:
    return model.get_submodule(path) if path else model


def _path_of(model: nn.Module, target: nn.Module) -> str | None:
    for name, module in model.named_modules():
        if module is target:
            return name
    return None


def _family(model: nn.Module) -> Family | None:
    config = getattr(model, "config", None)
    if getattr(config, "is_encoder_decoder", False):
        return ENCODER_DECODER
    can_generate = getattr(type(model), "can_generate", None)
    if callable(can_generate) and can_generate():
        return CAUSAL
    if "MaskedLM" in type(model).__name__ or "ForMaskedLM" in str(getattr(config, "architectures", "")):
        return MASKED
    if "CausalLM" in type(model).__name__ or "LMHead" in type(model).__name__:
        return CAUSAL
    return None


def _find_layer_list(
    root: nn.Module, root_path: str, n_expected: int | None
) -> tuple[str, nn.ModuleList] | None:
    """The shallowest ModuleList of same-class blocks (preferring one of the configured length)."""
    candidates: list[tuple[int, int, str, nn.ModuleList]] = []
    for name, module in root.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        kinds = {type(child) for child in module}
        if len(kinds) != 1:
            continue
        if not any(True for _ in module[0].parameters()):
            continue
        matches = 0 if n_expected is None or len(module) == n_expected else 1
        candidates.append((matches, name.count("."), name, module))
    if not candidates:
        return None
    _, _, name, module = min(candidates, key=lambda c: (c[0], c[1]))
    full = f"{root_path}.{name}" if root_path and name else (root_path or name)
    return full, module


def _find_mlp_down(layer: nn.Module, hidden: int) -> tuple[str, nn.Module, int] | None:
    """The last linear map intermediate -> hidden outside the attention: the MLP's down projection."""
    found: tuple[str, nn.Module, int] | None = None
    for name, module in layer.named_modules():
        if any("attention" in part.lower() or "attn" in part.lower() for part in name.split(".")):
            continue
        shape = _linear_shape(module)
        if shape is None:
            continue
        d_in, d_out = shape
        if d_out == hidden and d_in > hidden:
            found = (name, module, d_in)
    return found


def _find_attention(layer: nn.Module) -> nn.Module | None:
    for _name, module in layer.named_modules():
        if "attention" in type(module).__name__.lower():
            return module
    return None


def _find_final_norm(stack_root: nn.Module, layers_path_in_root: str) -> tuple[str, nn.Module] | None:
    """A norm registered directly on the stack after its layer list (GPT-2 ln_f, Llama norm, T5 final)."""
    first_part = layers_path_in_root.split(".")[0] if layers_path_in_root else ""
    seen_layers = False
    found: tuple[str, nn.Module] | None = None
    for name, child in stack_root.named_children():
        if name == first_part:
            seen_layers = True
            continue
        if seen_layers and _is_norm(child) and found is None:
            found = (name, child)
    return found


def _layers_from_override(model: nn.Module, path: str) -> nn.ModuleList | None:
    try:
        module = _get(model, path)
    except AttributeError:
        return None
    return module if isinstance(module, nn.ModuleList) else None


def _config_layers(config: Any, which: str) -> int | None:
    if which == "encoder":
        return getattr(config, "num_layers", None) or getattr(config, "encoder_layers", None)
    for attr in ("num_decoder_layers", "decoder_layers", "num_hidden_layers", "n_layer", "num_layers"):
        value = getattr(config, attr, None)
        if isinstance(value, int):
            return value
    return None


def _build_stack(
    model: nn.Module,
    stack_root_path: str,
    n_expected: int | None,
    hidden: int,
    override: Mapping[str, str],
    missing: list[str],
    label: str,
) -> Stack | None:
    stack_root = _get(model, stack_root_path)
    if "layers" in override and label == "decoder":
        layer_list = _layers_from_override(model, override["layers"])
        found = (override["layers"], layer_list) if layer_list is not None else None
    else:
        found = _find_layer_list(stack_root, stack_root_path, n_expected)
    if found is None:
        missing.append(f"{label} layer list")
        return None
    layers_path, layer_list = found
    layers = list(layer_list)
    layer_paths = [f"{layers_path}.{i}" for i in range(len(layers))]
    mlp_down: list[nn.Module] = []
    mlp_paths: list[str] = []
    sizes: set[int] = set()
    for layer, layer_path in zip(layers, layer_paths, strict=True):
        if "mlp_down" in override:
            try:
                module = layer.get_submodule(override["mlp_down"])
            except AttributeError:
                missing.append(f"MLP down projection {override['mlp_down']!r} in {layer_path}")
                break
            shape = _linear_shape(module)
            if shape is not None:
                sizes.add(shape[0])
            mlp_down.append(module)
            mlp_paths.append(f"{layer_path}.{override['mlp_down']}")
            continue
        hit = _find_mlp_down(layer, hidden)
        if hit is None:
            missing.append(f"MLP activation point (a linear map intermediate -> {hidden}) in {layer_path}")
            break
        name, module, d_in = hit
        sizes.add(d_in)
        mlp_down.append(module)
        mlp_paths.append(f"{layer_path}.{name}")
    attention: list[nn.Module | None] = []
    for layer in layers:
        if "attention" in override:
            attention.append(layer.get_submodule(override["attention"]))
        else:
            attention.append(_find_attention(layer))
    return Stack(
        path=layers_path,
        layers=layers,
        layer_paths=layer_paths,
        mlp_down=mlp_down,
        mlp_down_paths=mlp_paths,
        attention=attention,
        intermediate_size=max(sizes) if sizes else 0,
    )


def _stack_root_path(model: nn.Module, family: Family, which: str) -> str:
    if family == ENCODER_DECODER:
        getter = getattr(model, f"get_{which}", None)
        stack = getter() if callable(getter) else getattr(model, which, None)
        path = _path_of(model, stack) if stack is not None else None
        return path if path is not None else which
    base = getattr(model, "base_model", model)
    path = _path_of(model, base)
    return path or ""


def _unembedding(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The top-level child that holds the output embedding (lm_head, or BERT's whole cls head)."""
    getter = getattr(model, "get_output_embeddings", None)
    output = getter() if callable(getter) else None
    if output is None:
        return None
    base = getattr(model, "base_model", None)
    for name, child in model.named_children():
        if child is base and base is not model:
            continue
        if child is output or any(module is output for module in child.modules()):
            return name, child
    return None


# ------------------------------------------------------------------------------------------ inspection


def inspect_architecture(
    model: nn.Module, overrides: Mapping[str, str] | None = None, *, probe: bool = True
) -> Architecture:
    """Describe ``model`` for the analyses, or raise ``UnsupportedModel`` naming what is missing.

    ``overrides`` (or ``ARCHITECTURE_OVERRIDES[model_type]``) gives dotted paths for parts the inspection
    cannot find: family, layers, final_norm ("" for none), unembedding, and per-layer mlp_down/attention.
    With ``probe`` a tiny forward checks that final norm + unembedding reproduces the model's logits.
    """
    config = getattr(model, "config", None)
    model_type = str(getattr(config, "model_type", type(model).__name__))
    override = dict(ARCHITECTURE_OVERRIDES.get(model_type, {}))
    override.update(overrides or {})
    unknown = set(override) - set(OVERRIDE_KEYS)
    if unknown:
        raise ValueError(f"unknown override keys {sorted(unknown)}; valid: {', '.join(OVERRIDE_KEYS)}")
    missing: list[str] = []

    family = override.get("family") or _family(model)
    if family not in FAMILIES:
        missing.append("model family (causal LM, masked LM or encoder-decoder)")
        family = CAUSAL
    getter = getattr(model, "get_input_embeddings", None)
    input_embedding = getter() if callable(getter) else None
    if input_embedding is None:
        missing.append("input embedding")
    hidden = int(getattr(input_embedding, "embedding_dim", 0) or getattr(config, "hidden_size", 0) or 0)

    if "unembedding" in override:
        path = override["unembedding"]
        unembed: tuple[str, nn.Module] | None = (path, _get(model, path))
    else:
        unembed = _unembedding(model)
    if unembed is None:
        missing.append("unembedding (output embeddings / LM head)")

    decoder_root = _stack_root_path(model, family, "decoder")
    decoder = _build_stack(
        model, decoder_root, _config_layers(config, "decoder"), hidden, override, missing, "decoder"
    )
    encoder = None
    if family == ENCODER_DECODER:
        encoder_root = _stack_root_path(model, family, "encoder")
        encoder = _build_stack(
            model, encoder_root, _config_layers(config, "encoder"), hidden, {}, missing, "encoder"
        )

    final_norm: nn.Module = nn.Identity()
    final_norm_path = ""
    if "final_norm" in override:
        if override["final_norm"]:
            final_norm_path = override["final_norm"]
            final_norm = _get(model, final_norm_path)
    elif decoder is not None:
        root = _get(model, decoder_root)
        layers_rel = decoder.path[len(decoder_root) + 1 :] if decoder_root else decoder.path
        hit = _find_final_norm(root, layers_rel)
        if hit is not None:
            final_norm_path = f"{decoder_root}.{hit[0]}" if decoder_root else hit[0]
            final_norm = hit[1]

    name = str(getattr(config, "_name_or_path", "") or model_type)
    if missing:
        raise UnsupportedModel(name, missing, "give the parts as an architecture override")
    assert unembed is not None and decoder is not None and input_embedding is not None
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    arch = Architecture(
        model_type=model_type,
        family=family,
        input_embedding=input_embedding,
        final_norm=final_norm,
        final_norm_path=final_norm_path,
        unembedding=unembed[1],
        unembedding_path=unembed[0],
        decoder=decoder,
        encoder=encoder,
        hidden_size=hidden,
        vocab_size=vocab,
        decoder_start_token_id=getattr(config, "decoder_start_token_id", None),
        overrides_used={k: v for k, v in override.items()},
    )
    if probe:
        _calibrate(model, arch, name)
    return arch


# ---------------------------------------------------------------------------------------- scoped hooks


@contextmanager
def capture_io(modules: Mapping[str, nn.Module], *, inputs: bool) -> Iterator[dict[str, torch.Tensor]]:
    """Record each module's first input (or output) during forwards run by *this thread*, then unhook.

    Why: the daemon shares one model among requests; the hooks hold only this call's dict, ignore
    other threads' forwards, and are removed in ``finally`` whatever happens.
    """
    owner = threading.get_ident()
    captured: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(key: str):
        if inputs:

            def pre_hook(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
                if threading.get_ident() == owner:
                    value = args[0] if args else kwargs.get("hidden_states", next(iter(kwargs.values())))
                    captured[key] = value.detach()

            return pre_hook

        def hook(_module: nn.Module, _args: Any, output: Any) -> None:
            if threading.get_ident() == owner:
                value = output[0] if isinstance(output, tuple | list) else output
                captured[key] = value.detach()

        return hook

    try:
        for key, module in modules.items():
            if inputs:
                handles.append(module.register_forward_pre_hook(make_hook(key), with_kwargs=True))
            else:
                handles.append(module.register_forward_hook(make_hook(key)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _probe_inputs(model: nn.Module, arch: Architecture) -> dict[str, torch.Tensor]:
    device = next(model.parameters()).device
    n = max(2, min(arch.vocab_size or 4, 4))
    ids = torch.arange(1, n + 1, device=device).clamp(max=max(arch.vocab_size - 1, 1)).unsqueeze(0)
    mask = torch.ones_like(ids)
    if arch.family == ENCODER_DECODER:
        return {"input_ids": ids, "attention_mask": mask, "decoder_input_ids": ids[:, :2]}
    return {"input_ids": ids, "attention_mask": mask}


def _calibrate(model: nn.Module, arch: Architecture, name: str) -> None:
    """Measure any constant scale between final norm and unembedding; check the lens reproduces logits."""
    watch = {"last_layer": arch.decoder.layers[-1]}
    with torch.no_grad():
        with (
            capture_io({"unembed_in": arch.unembedding}, inputs=True) as ins,
            capture_io(watch, inputs=False) as outs,
        ):
            logits = model(**_probe_inputs(model, arch), use_cache=False).logits
        if "unembed_in" not in ins or "last_layer" not in outs:
            raise UnsupportedModel(name, ["a forward path through the found layers and unembedding"])
        _check_lens(arch, outs["last_layer"], ins["unembed_in"], logits, name)


def _check_lens(
    arch: Architecture, last: torch.Tensor, fed: torch.Tensor, logits: torch.Tensor, name: str
) -> None:
    normed = arch.final_norm(last).float()
    fed = fed.float()
    denom = float((normed * normed).sum())
    scale = float((normed * fed).sum()) / denom if denom > 0 else 1.0
    if abs(scale - 1.0) > 1e-4:
        arch.unembed_input_scale = scale
    lens = arch.lens_logits(last).float()
    tol = 1e-3 if logits.dtype == torch.float32 else 3e-2 * (1.0 + float(logits.float().abs().max()))
    if lens.shape != logits.shape or not torch.allclose(lens, logits.float(), atol=tol, rtol=tol):
        raise UnsupportedModel(
            name,
            ["a final norm and unembedding that reproduce the model's logits"],
            f"found final norm {arch.final_norm_path or '(none)'} and unembedding {arch.unembedding_path}",
        )
