"""Ecco's ``LM``: ``lm.generate(...)``, ``lm(inputs)``, ``lm.tokenizer`` and ``lm.model_config``, served by a daemon.

Why a wrapper and not a new client: every call is one request of the blocking client's model
(``generate`` or ``analyze``), and every result is the client's ``Output`` behind Ecco's ``OutputSeq``
names. What Ecco computed in the notebook's process (hidden states, activations, attributions) stays
in the daemon's result store and is fetched when a notebook reads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ecco_client.ecco.notes import note
from ecco_client.ecco.output import OutputSeq
from ecco_client.ecco.tensors import to_numpy
from ecco_client.ecco.tokenizer import RemoteTokenizer

# The daemon's model families by Ecco's names for them.
ECCO_TYPES = {"causal": "causal", "masked": "mlm", "encoder-decoder": "enc-dec"}
SAMPLING_TOP_K = 50  # Hugging Face's default top_k, which Ecco's sampling used when none was given


class LM:
    """A model held by the daemon, with Ecco's methods; made by ``ecco.from_pretrained``."""

    def __init__(self, model: Any, description: dict[str, Any], *, activations: bool = False,
                 activations_layer_nums: Sequence[int] | None = None, attention: bool = False,
                 verbose: bool = True) -> None:
        self.model_name = str(description["name"])
        self.model_type = ECCO_TYPES.get(str(description.get("family")), str(description.get("family")))
        # Ecco read this from its model-config.yaml; the daemon finds the architecture by inspection.
        self.model_config = {"type": self.model_type, **description}
        self.tokenizer = RemoteTokenizer(model, description)
        self.collect_activations_flag = activations
        self.collect_activations_layer_nums = list(activations_layer_nums) if activations_layer_nums else None
        self.attention = attention
        self.verbose = verbose
        self.model = model  # the client's LanguageModel: lm.model.analyze(...), lm.model.stream(...)

    def generate(self, input_str: str, max_length: int | None = 8, temperature: float | None = None,
                 top_k: int | None = None, top_p: float | None = None, do_sample: bool | None = False,
                 attribution: Sequence[str] | None = None, generate: int | None = None, beam_size: int = 1,
                 **generate_kwargs: Any) -> OutputSeq:
        """Generate ``generate`` tokens (or up to ``max_length`` in all) after ``input_str``, then analyse them.

        ``attribution`` takes Ecco's method names (``ig``, ``grad_x_input``, ``saliency``…). Layer states
        are always kept, so ``layer_predictions`` and ``rankings`` need nothing more.
        """
        if generate is None:
            n_input = len(self.tokenizer(input_str)["input_ids"])
            generate = int(max_length or 8) - n_input
            if generate <= 0:
                raise ValueError(f"max_length set to {max_length} while input token has more tokens ({n_input}). "
                                 "Consider increasing max_length")
        if beam_size != 1:
            note("beam_size is not supported by the daemon; generating greedily or by sampling")
        seed = generate_kwargs.pop("seed", None)
        if generate_kwargs:
            note(f"generate arguments not supported here, ignored: {', '.join(sorted(generate_kwargs))}")
        sampling = bool(do_sample)
        if self.verbose:
            print(input_str, end="", flush=True)
        output = self.model.generate(
            input_str, generate, do_sample=sampling, temperature=1.0 if temperature is None else float(temperature),
            top_k=int(top_k) if top_k is not None else (SAMPLING_TOP_K if sampling else 0),
            top_p=1.0 if top_p is None else float(top_p), seed=seed,
            on_token=_print_token if self.verbose else None,
            analyze=True, attribution=list(attribution or []), **self._analysis_options())
        if self.verbose:
            print(flush=True)
        return OutputSeq(output, self, attribution or ())

    def __call__(self, input_tokens: Mapping[str, Any]) -> OutputSeq:
        """Teacher-forced analysis of tokenized inputs (``lm.tokenizer(text, return_tensors="pt")``)."""
        if "input_ids" not in input_tokens:
            raise ValueError("Parameter 'input_tokens' needs to have the attribute 'input_ids'. Verify it was "
                             "produced by the appropriate tokenizer with the parameter return_tensors=\"pt\".")
        ids = to_numpy(input_tokens["input_ids"])
        ids = ids[None] if ids.ndim == 1 else ids
        if ids.shape[0] != 1:
            raise ValueError(f"one sequence at a time: input_ids has a batch of {ids.shape[0]}")
        row = ids[0]
        mask = input_tokens.get("attention_mask")
        if mask is not None:
            row = row[to_numpy(mask).reshape(-1)[: len(row)] != 0]
        output = self.model.analyze([int(i) for i in row], **self._analysis_options())
        return OutputSeq(output, self)

    def _analysis_options(self) -> dict[str, Any]:
        # Rankings wait for the first rankings() call, as Ecco computes them on request.
        options: dict[str, Any] = {"activations": self.collect_activations_flag, "attention": self.attention,
                                   "rankings": False}
        if self.collect_activations_flag and self.collect_activations_layer_nums:
            options["activation_layers"] = [int(i) for i in self.collect_activations_layer_nums]
        return options

    def __repr__(self) -> str:
        return f"<ecco LM {self.model_name!r} ({self.model_type}), served by the daemon>"


def _print_token(event: dict[str, Any]) -> None:
    """Ecco showed each token as it was generated (verbose=True); here it prints as it streams in."""
    print(event.get("token", ""), end="", flush=True)
