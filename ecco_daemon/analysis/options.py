"""What one analysis run computes: the one options type, built once from a request and carried unchanged.

Why: the options used to be repacked into a new bag at each layer on the way from the handler to
``attribute``, and the method names were checked at every hop. They are now checked and made canonical
here, once, when the options are built; everything downstream reads fields and never re-validates.
The cancel check is not an option: it belongs to the job, and is passed beside the options.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ecco_daemon.analysis.errors import InvalidArgument, UnknownName
from ecco_daemon.analysis.methods import get_attribution_method
from ecco_daemon.analysis.single_tokens import single_token_ids

# What a request may attribute; "contrastive" is not asked for by name: it follows from giving a foil.
SCORES = ("logit", "prob", "log_prob")
# Why "reduced" exists: on a CPU with AMX, bfloat16 matmuls run 3 to 8 times faster than float32 ones, and
# the backward passes are most of an attribution's cost. It is opt-in: rankings of close tokens can swap.
BACKWARD_PRECISIONS = ("full", "reduced")
AUTOCAST_DTYPES = ("bfloat16", "float16")
IG_METHODS = ("gausslegendre", "riemann_trapezoid")  # captum's integration rules


FOIL_ONE_TOKEN = "a foil is the one token the target is contrasted with: give one piece (its text or id)"


@dataclass(frozen=True)
class AnalysisOptions:
    """Everything a run may compute and how; defaults follow Ecco and captum."""

    attribution: tuple[str, ...] = ()  # canonical method names (aliases resolved), in order, no repeats
    steps: int = 50  # integrated gradients interpolation steps
    # Token ids or one-token texts, (1,) or (N,): contrast each target against this token. Texts become ids
    # with the model's tokenizer (``with_foil_ids``) before any run.
    foils: tuple[int | str, ...] | None = None
    score: str | None = None  # what is attributed (SCORES); None: the method's default (Ecco: probability)
    activations: bool = True  # record MLP activations (for NMF and neuron views)
    activation_layers: tuple[int, ...] | None = None  # None: every layer
    attention: bool = False  # needs a model loaded with attn_implementation="eager"
    topk: int = 10  # alternatives per scored position
    autocast: str | None = None  # "bfloat16" / "float16": attribution passes under torch.autocast
    # "reduced": the backward's matmuls take bfloat16 inputs with float32 accumulation (TF32 on CUDA); the
    # forward, and so every score and probability, stays float32.
    backward_precision: str = "full"
    rankings: bool = True  # in the first reply; False: computed when a view first asks (as Ecco does)
    # Tuning knobs (tests, benchmarks): how the work is cut into passes, never what it computes.
    ig_method: str = "gausslegendre"
    chunk_size: int | None = None  # targets per batched backward; None: from free memory
    step_batch: int | None = None  # IG steps / occluded copies per forward; None: from free memory
    batched: bool = True  # False: one backward per target (the fallback), for checks
    block_size: int | None = None  # causal targets per block (attribution.TargetBlock); None: by device

    def __post_init__(self) -> None:
        methods = (self.attribution,) if isinstance(self.attribution, str) else self.attribution
        self._set("foils", _foil_tuple(self.foils))
        if self.foils and not methods:
            methods = ("contrastive",)  # a foil asks "why this rather than that": never dropped for want of a method
        self._set("attribution", tuple(dict.fromkeys(get_attribution_method(name).name for name in methods)))
        self._set("activation_layers", _int_tuple(self.activation_layers))
        _one_of("score", self.score, SCORES)
        _one_of("autocast", self.autocast, AUTOCAST_DTYPES)
        _one_of("backward_precision", self.backward_precision, BACKWARD_PRECISIONS)
        _one_of("ig_method", self.ig_method, IG_METHODS)
        if self.steps < 1:
            raise InvalidArgument(f"integrated gradients needs at least 1 step, got {self.steps}")
        if self.topk < 1:
            raise InvalidArgument(f"topk must be at least 1, got {self.topk}")

    def cost(self, n_tokens: int) -> int:
        """Work units: every method costs a backward pass per token; IG costs ``steps`` of them."""
        per_token = sum(self.steps if m == "integrated_gradients" else 1 for m in self.attribution)
        return n_tokens * max(1, per_token)

    def with_foil_ids(self, tokenizer: Any) -> AnalysisOptions:
        """These options with every foil text as its token's id; a text of several tokens is refused."""
        if not self.foils or all(isinstance(f, int) for f in self.foils):
            return self
        return replace(self, foils=tuple(single_token_ids(tokenizer, self.foils, "foil", FOIL_ONE_TOKEN)))

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # canonical forms, set once while the frozen object is built


def _int_tuple(values: Any) -> tuple[int, ...] | None:
    """Ids or layers as a tuple of ints (one int, a list or an array); empty or None: None."""
    if values is None:
        return None
    flat = tuple(int(v) for v in np.asarray(values, dtype=np.int64).reshape(-1))
    return flat or None


def _foil_tuple(values: Any) -> tuple[int | str, ...] | None:
    """Foils as a tuple of ids and texts (one of them, a list or an array); empty or None: None."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    elif not isinstance(values, (list, tuple)):
        values = np.asarray(values, dtype=np.int64).reshape(-1).tolist()
    return tuple(v if isinstance(v, str) else int(v) for v in values) or None


def _one_of(field: str, value: str | None, valid: Iterable[str]) -> None:
    if value is not None and value not in valid:
        raise UnknownName(field, value, valid)
