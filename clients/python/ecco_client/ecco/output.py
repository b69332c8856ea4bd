"""Ecco's ``OutputSeq`` names over the client's ``Output``: the same views, Ecco's attributes and positions.

Why an adapter and not a second output class: the views (saliency, layer predictions, rankings, NMF)
are the client's ``Output`` methods, drawn by the one offline renderer; this class only renames, keeps
Ecco's argument defaults and ``printJson`` data, and fetches Ecco's arrays (hidden states, embedding
states, activations, attributions) from the daemon's stored run when a notebook first reads them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ecco_client.ecco.tensors import as_tensor
from ecco_client.output import NMF, Output

if TYPE_CHECKING:
    from ecco_client.ecco.lm import LM


class OutputSeq:
    """The result of ``lm.generate`` or ``lm(inputs)``; anything not named here is the client ``Output``'s."""

    def __init__(self, output: Output, lm: LM, attribution: Sequence[str] = ()) -> None:
        self.output = output
        self.lm = lm
        self.tokenizer = lm.tokenizer
        self.config = lm.model_config
        self.model_type = lm.model_type
        self.collect_activations_layer_nums = lm.collect_activations_layer_nums
        self._asked = list(attribution)

    # -- Ecco's attributes --------------------------------------------------------------------------

    @property
    def n_input_tokens(self) -> int:
        return self.output.n_input_tokens

    @property
    def output_text(self) -> str:
        return self.output.text

    @property
    def token_ids(self) -> Any:
        """(1, T) every token's id, input then generated (a tensor when torch imports)."""
        return as_tensor(self.output.token_ids[None])

    @functools.cached_property
    def tokens(self) -> list[list[str]]:
        """(1, T) vocabulary entries ('ĠParis'), as Ecco's ``convert_ids_to_tokens``."""
        return [self.tokenizer.convert_ids_to_tokens(self.output.token_ids)]

    @functools.cached_property
    def attribution(self) -> dict[str, list[np.ndarray]]:
        """Per method asked (Ecco's names kept): for each output token, the scores of the tokens before it."""
        names = self._asked or list((self.output.analysis or {}).get("attribution_methods", []))
        return {name: self._attribution_rows(name) for name in names}

    @functools.cached_property
    def activations(self) -> dict[str, np.ndarray]:
        """{"decoder": (1, La, I, T)} MLP activations (and "encoder" for an encoder-decoder), numpy as in Ecco."""
        if not self.lm.collect_activations_flag:
            return {}
        values = self.output.states("activations")  # (La, S, I)
        n_encoder = int((self.output.analysis or {}).get("n_encoder") or 0)
        split = {"encoder": values[:, :n_encoder], "decoder": values[:, n_encoder:]} if n_encoder else {
            "decoder": values}
        return {part: np.ascontiguousarray(v.transpose(0, 2, 1)[None]) for part, v in split.items()}

    @functools.cached_property
    def embedding_states(self) -> Any:
        """(1, T, H) the input of the first layer: token (and position) embeddings."""
        return as_tensor(self.output.states("embedding"))

    @functools.cached_property
    def decoder_hidden_states(self) -> Any:
        """(L, 1, T, H) every layer's output; each ``[layer]`` is (1, T, H) as in Ecco's tuple."""
        return as_tensor(self.output.states("hidden")[:, None])

    @property
    def encoder_hidden_states(self) -> None:
        """None: a causal or masked model's layers are ``decoder_hidden_states``, as in Ecco."""
        return None

    @functools.cached_property
    def hidden_states(self) -> Any:
        """(L + 1, T, H) embedding states then every layer's output, as Ecco's older ``hidden_states``."""
        states = np.concatenate([self.output.states("embedding"), self.output.states("hidden")])
        return as_tensor(states)

    def _get_encoder_hidden_states(self) -> Any:
        return self.encoder_hidden_states if self.encoder_hidden_states is not None else self.decoder_hidden_states

    def _get_hidden_states(self) -> tuple[Any, Any]:
        return self.encoder_hidden_states, self.decoder_hidden_states

    # -- Ecco's views -------------------------------------------------------------------------------

    def primary_attributions(self, attr_method: str = "grad_x_input", style: str = "minimal",
                             ignore_tokens: Sequence[int] = (), **kwargs: Any) -> Any:
        """Which input tokens drove each output token; ``printJson=True`` returns Ecco's data instead."""
        spec = self.output.primary_attributions(attr_method, style, ignore_tokens)
        if not kwargs.get("printJson"):
            return spec
        method = spec.data["methods"][0]
        values, targets = np.asarray(method["values"]), method["targets"]
        return _printed({"tokens": self._token_entries(),
                         "attributions": [values[i, :p].tolist() for i, p in enumerate(targets)]})

    def saliency(self, attr_method: str = "grad_x_input", style: str = "minimal", **kwargs: Any) -> Any:
        """Ecco's earlier name for ``primary_attributions``."""
        return self.primary_attributions(attr_method, style, **kwargs)

    def __call__(self, position: int | None = None, **kwargs: Any) -> Any:
        return self.primary_attributions(**kwargs)

    def layer_predictions(self, position: int = 1, topk: int | None = 10, layer: int | None = None,
                          **kwargs: Any) -> Any:
        """Each layer's top-k for the token at ``position`` (the logit lens, final norm applied)."""
        spec = self.output.layer_predictions(position, topk or 10, layer)
        if not kwargs.get("printJson"):
            return spec
        entry = next(e for e in spec.data["positions"] if e["position"] == position)
        first = layer if layer is not None else 0
        return _printed([[{"token": c["text"], "prob": str(c["prob"]), "ranking": c["rank"], "layer": first + n}
                          for c in rows["top"]] for n, rows in enumerate(entry["layers"])])

    def rankings(self, **kwargs: Any) -> Any:
        """The rank, at every layer, of each token the model produced."""
        spec = self.output.rankings()
        if not kwargs.get("printJson"):
            return spec
        targets = spec.data["targets"]
        texts = [t["text"] for t in spec.data["tokens"]]
        return _printed({"input_tokens": [texts[p - 1] for p in targets], "output_tokens": [texts[p] for p in targets],
                         "rankings": np.asarray(spec.data["ranks"])})

    def rankings_watch(self, watch: Sequence[int | str] | None = None, position: int = -1, **kwargs: Any) -> Any:
        """The rank, at every layer, of each watched token (ids) for the token at ``position`` (-1: the last)."""
        if not watch:
            raise ValueError("rankings_watch needs the token ids to watch")
        spec = self.output.rankings_watch(list(watch), len(self.output.tokens) - 1 if position == -1 else position)
        if not kwargs.get("printJson"):
            return spec
        return _printed({"input_tokens": [t["text"] for t in spec.data["tokens"]],
                         "output_tokens": [w["text"] for w in spec.data["watch"]],
                         "rankings": np.asarray(spec.data["ranks"])})

    def run_nmf(self, n_components: int = 10, from_layer: int | None = None, to_layer: int | None = None,
                **kwargs: Any) -> NMF:
        """Neuron activations factorized; ``.explore()`` draws the factor explorer, ``.plot()`` a heatmap."""
        if not self.lm.collect_activations_flag:
            raise ValueError("No activation data found. Make sure 'activations=True' was passed to "
                             "ecco.from_pretrained().")
        return self.output.run_nmf(n_components, from_layer, to_layer)

    # -- the rest is the client Output's ------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "output":
            raise AttributeError(name)
        return getattr(self.output, name)

    def __str__(self) -> str:
        return f"<LMOutput '{self.output_text}' # of lm outputs: {len(self.output.tokens) - self.n_input_tokens}>"

    def _repr_html_(self) -> str:
        return self.output._repr_html_()

    def _attribution_rows(self, name: str) -> list[np.ndarray]:
        method = self.output.primary_attributions(name).data["methods"][0]
        values = np.asarray(method["values"])
        return [values[i, :p] for i, p in enumerate(method["targets"])]

    def _token_entries(self) -> list[dict[str, Any]]:
        pieces = self.tokens[0]
        return [{"token": t, "token_id": int(i), "type": "input" if n < self.n_input_tokens else "output",
                 "position": n, "raw": pieces[n]}
                for n, (t, i) in enumerate(zip(self.output.tokens, self.output.token_ids, strict=True))]


def _printed(data: Any) -> Any:
    """Ecco's ``printJson=True``: print the view's data and return it."""
    print(data)
    return data

