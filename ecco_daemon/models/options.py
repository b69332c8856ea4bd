"""Parsing the dtype and device options of a model load into torch terms."""

from __future__ import annotations

from typing import Literal

import torch

from ecco_daemon.models.errors import ModelLoadError

AUTO = "auto"
COMPILE_DECODE = (AUTO, "off", "on")

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | Literal["auto"]:
    """A dtype name ("float32", "bfloat16", "float16", "auto", or a short alias) as a torch dtype.

    "auto" keeps the dtype the checkpoint was saved in, as transformers' ``dtype="auto"`` does.
    """
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ModelLoadError(f"unsupported dtype {dtype}; use one of float32, bfloat16, float16, auto")
        return dtype
    key = str(dtype).strip().lower().removeprefix("torch.")
    if key == AUTO:
        return AUTO
    if key not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r}; use one of float32, bfloat16, float16, auto")
    return DTYPES[key]


def parse_compile_decode(value: str | None) -> str:
    """The compile_decode setting: "auto" (a static cache and compiled decode step where CUDA is), "on"
    (on any device: tests, benchmarks) or "off" (the eager loop)."""
    key = AUTO if value is None else str(value).strip().lower()
    if key not in COMPILE_DECODE:
        raise ModelLoadError(f"unknown compile_decode {value!r}; use one of {', '.join(COMPILE_DECODE)}")
    return key


def dtype_name(dtype: torch.dtype) -> str:
    """'float32' for torch.float32: the plain name that travels in messages."""
    return str(dtype).removeprefix("torch.")


def default_device() -> torch.device:
    """CUDA when torch sees a GPU, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


DEVICE_TYPES = ("cpu", "cuda", "mps")


def parse_device(device: str | torch.device | None) -> torch.device | Literal["auto"]:
    """A device string as a torch device, or "auto" to spread a large model over GPUs with accelerate.

    Asking for a device this machine lacks fails here, with the reason, instead of deep inside torch.
    """
    if device is None:
        return default_device()
    if isinstance(device, str) and device.strip().lower() == AUTO:
        return AUTO
    try:
        parsed = torch.device(device.strip() if isinstance(device, str) else device)
    except (RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"unknown device {device!r}; use cpu, cuda, cuda:N, mps or auto") from exc
    if parsed.type not in DEVICE_TYPES:
        # torch knows more (meta, xpu, lazy...): a model "loaded" on the meta device has no weights to run.
        raise ModelLoadError(f"device {device!r} cannot run a model here; use cpu, cuda, cuda:N, mps or auto")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(f"device {device!r} was asked for, but torch sees no CUDA GPU here")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ModelLoadError(
                f"device {device!r} was asked for, but torch sees only {torch.cuda.device_count()} GPU(s)"
            )
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"device {device!r} was asked for, but MPS is not available here")
    return parsed
