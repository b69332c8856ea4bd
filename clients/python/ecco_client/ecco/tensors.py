"""torch tensors where Ecco returns them, when torch can be imported; numpy arrays otherwise.

Why here, and only here: the client needs no torch (an import contract says so, with this module as
its one exception). Ecco's notebooks call tensor methods on ``token_ids`` and hidden states, so where
torch is installed they get tensors; without it the same arrays come as numpy.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

import numpy as np


@functools.cache
def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def as_tensor(array: Any) -> Any:
    """A torch tensor of ``array``, or the numpy array when torch is absent."""
    array = np.ascontiguousarray(array)
    if not torch_available():
        return array
    import torch

    # Arrays decoded from the wire are read-only; a tensor must own writable memory.
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def as_return_tensors(array: Any, return_tensors: str | None) -> Any:
    """What Hugging Face's ``return_tensors`` asks for: "pt" (needs torch), "np", or None (lists)."""
    if return_tensors is None:
        return array  # plain lists, as given
    if return_tensors == "np":
        return np.asarray(array)
    if return_tensors == "pt":
        if not torch_available():
            raise ImportError("return_tensors='pt' needs torch; install it or pass return_tensors='np'")
        return as_tensor(array)
    raise ValueError(f"return_tensors must be 'pt', 'np' or None, not {return_tensors!r}")


def to_numpy(value: Any) -> np.ndarray:
    """Ids or arrays from lists, numpy arrays or (CPU or GPU) tensors."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)
