"""What a generation or analysis returns: Ecco's Output, holding numpy arrays from the daemon.

The methods keep Ecco's names. Each returns a ``ViewSpec``: its ``data`` holds plain dicts and numpy
arrays, and it draws itself in Jupyter (``_repr_html_``), to a file (``to_html``) or as JSON. Views that
need more than the first reply (layer predictions at a position, NMF with k factors, attention) ask the
daemon, which answers from its stored run without running the model again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ecco_client import compare, views
from ecco_client.render.html import ViewSpec, write_html
from ecco_client.tabs import analysis_views, tabs_view, view_spec

F = TypeVar("F", bound=Callable[..., Any])


def asks_daemon(method: F) -> F:
    """Marks a view that may ask the daemon: the async client's output awaits it (aio/output.py)."""
    method.asks_daemon = True  # type: ignore[attr-defined]
    return method


@dataclass
class NMF:
    """Neuron activations factorized (Ecco's settings); ``explore()`` draws the factor explorer."""

    factors: np.ndarray  # (K, T) factors x positions
    layers: list[int]
    view_spec: ViewSpec
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def components(self) -> np.ndarray:
        """(K, T) Ecco's name for the factors: each factor's strength at each position."""
        return self.factors

    def explore(self) -> ViewSpec:
        return self.view_spec

    def plot(self, n_components: int | None = None, dpi: int = 80) -> Any:
        """Each factor's strength along the tokens as a matplotlib heatmap (as Ecco's ``plot``); needs matplotlib."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("NMF.plot() draws with matplotlib; install it, or use explore()") from None
        factors = self.factors[: n_components or len(self.factors)]
        tokens = [t["text"] for t in self.view_spec.data.get("tokens", [])]
        figure, axes = plt.subplots(figsize=(max(4, 0.4 * factors.shape[1]), 0.5 * len(factors) + 1), dpi=dpi)
        axes.imshow(factors, aspect="auto", cmap="viridis")
        axes.set_yticks(range(len(factors)), [f"factor {i}" for i in range(len(factors))])
        if len(tokens) == factors.shape[1]:
            axes.set_xticks(range(len(tokens)), tokens, rotation=90)
        return figure

    def _repr_html_(self) -> str:
        return self.view_spec._repr_html_()


@dataclass
class Output:
    model: str
    token_ids: np.ndarray  # (T,) every token: input, then generated
    tokens: list[str]  # (T,) the text each token adds
    n_input_tokens: int
    probabilities: np.ndarray  # (N,) probability of each generated token (empty for analyze)
    alternatives: dict[str, Any]  # ids (N, k), probs (N, k), tokens: N lists of k strings
    text: str
    generated_text: str
    stop_reason: str
    result_id: str | None
    analysis: dict[str, Any] | None = field(repr=False, default=None)
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    client: Any = field(repr=False, default=None)
    # Views of every position already fetched, by their parameters: a stored run never changes, so
    # picking another position is a lookup (shared with the async twin's copies of this output).
    fetched: dict[tuple[Any, ...], Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_result(cls, result: dict[str, Any], client: Any = None) -> Output:
        """From a ``generate`` result (with ``analysis`` when attributions were asked) or an ``analyze`` one."""
        analysis = result.get("analysis") or (result if "scores" in result else None)
        n_input = int(result.get("n_input_tokens", len(result["tokens"])))
        return cls(
            model=result["model"],
            token_ids=np.asarray(result["token_ids"]),
            tokens=list(result["tokens"]),
            n_input_tokens=n_input,
            probabilities=np.asarray(result.get("probabilities", np.zeros(0, np.float32))),
            alternatives=result.get("alternatives", {}),
            text=result.get("text", "".join(result["tokens"])),
            generated_text=result.get("generated_text", ""),
            stop_reason=result.get("stop_reason", ""),
            result_id=result.get("result_id"),
            analysis=analysis,
            raw=result,
            client=client,
        )

    # -- plain facts ------------------------------------------------------------------------------

    @property
    def generated_tokens(self) -> list[str]:
        return self.tokens[self.n_input_tokens:]

    def top_alternatives(self, step: int) -> list[tuple[str, float]]:
        """The k most likely tokens at one generation step, with their probabilities."""
        tokens = self.alternatives.get("tokens", [])[step]
        probs = np.asarray(self.alternatives.get("probs"))[step]
        return [(t, float(p)) for t, p in zip(tokens, probs, strict=True)]

    def __str__(self) -> str:
        return self.text

    # -- Ecco's views -----------------------------------------------------------------------------

    def token_probabilities(self) -> ViewSpec:
        """Each token colored by its probability; hovering shows the alternatives."""
        analysis = self._read()
        return self._spec("probability", analysis, views.probability_view(analysis))

    @asks_daemon
    def primary_attributions(self, attr_method: str = "grad_x_input", style: str = "minimal",
                             ignore_tokens: Sequence[int] = ()) -> ViewSpec:
        """Saliency of the input tokens for every output token (rows sum to 1, as in Ecco).

        ``ignore_tokens`` are positions left out, the rows renormalized (done by the daemon's run).
        """
        if style not in ("minimal", "detailed"):
            raise ValueError("style is 'minimal' or 'detailed'")
        reply = self._view("primary_attributions", {"attr_method": attr_method, "ignore_tokens": list(ignore_tokens)})
        method = views.saliency_method(reply["method"], np.asarray(reply["target_positions"]).tolist(),
                                       np.asarray(reply["values"]), views.foil_refs(reply))
        return self._spec("saliency", self._read(), {"methods": [method]}, {"style": style, "method": reply["method"]})

    @asks_daemon
    def layer_predictions(self, position: int, topk: int = 10, layer: int | None = None) -> ViewSpec:
        """Each layer's top-k tokens for the token at ``position`` (the logit lens, final norm applied).

        The view holds every position (one daemon request, the first time), shows ``position`` first, and
        lets any other be picked: in a notebook or an exported page nothing is fetched later, and asking
        again for another position asks the daemon nothing.
        """
        analysis = self._read()
        positions = analysis.predictable_positions()
        if position not in positions:
            raise ValueError(
                f"position {position} has no prediction; valid positions are {positions[0]}..{positions[-1]}")
        key = ("layer_predictions", topk, layer)
        entries = self.fetched.get(key)
        if entries is None:
            params: dict[str, Any] = {"positions": positions, "topk": topk}
            if layer is not None:
                params["layer"] = layer
            entries = self.fetched[key] = views.layer_predictions_entries(
                analysis, self._view("layer_predictions", params))
        return self._spec("layer_predictions", analysis, views.layer_predictions_view(analysis, entries, position))

    @asks_daemon
    def rankings(self) -> ViewSpec:
        """The rank of each output token at every layer (layers x output tokens)."""
        if self.analysis is not None and self.analysis.get("rankings") is None and self.result_id:
            # The run skipped them (rankings=False): the daemon computes them from its kept states, once.
            self.analysis["rankings"] = np.asarray(self._view("rankings", {})["rankings"])
        analysis = self._read()
        data = views.rankings_view(analysis)
        if data is None:
            raise ValueError("this result holds no rankings")
        return self._spec("rankings", analysis, data)

    @asks_daemon
    def rankings_watch(self, watch: Sequence[int | str], position: int) -> ViewSpec:
        """The rank of each watched token (ids or strings) at every layer, for one position."""
        analysis = self._read()
        reply = self._view("rankings_watch", {"watch": list(watch), "position": position})
        return self._spec("rankings_watch", analysis, views.rankings_watch_view(analysis, reply))

    @asks_daemon
    def run_nmf(self, n_components: int = 10, from_layer: int | None = None, to_layer: int | None = None) -> NMF:
        """Non-negative matrix factorization of the MLP activations (factors x positions)."""
        params: dict[str, Any] = {"n_components": n_components}
        if from_layer is not None:
            params["from_layer"] = from_layer
        if to_layer is not None:
            params["to_layer"] = to_layer
        reply = self._view("nmf", params)
        analysis = self._read()
        return NMF(np.asarray(reply["factors"]), list(np.asarray(reply["layers"]).tolist()),
                   self._spec("nmf", analysis, views.nmf_view(analysis, reply)), reply)

    @asks_daemon
    def attention(self, layer: int | Sequence[int] | None = None, head: int | None = None) -> ViewSpec:
        """Attention weights: one layer, several, or every layer (None); one head, or all heads (None).

        Works whatever attention the model was loaded with: the daemon records the weights with an
        eager-attention twin of the model when the run kept none.
        """
        analysis = self._read()
        layers: int | list[int] = list(range(analysis.n_layers)) if layer is None else (
            layer if isinstance(layer, int) else [int(i) for i in layer])
        reply = self._view("attention", {"layer": layers, "head": head})
        tokens = self._token_data(analysis)[analysis.n_encoder:]  # the decoder's own (self) attention
        return view_spec("attention", views.attention_view(analysis, reply, tokens))

    @asks_daemon
    def similarity(self, method: str, layer_a: int, layer_b: int, source: str = "hidden",
                   dims: int | None = None) -> float:
        """CCA, SVCCA, PWCCA or CKA between two layers' representations over this text's tokens.

        ``dims``: neurons kept for cca and pwcca (Ecco's examples use 50), SVD components for svcca (20 by
        default). CCA needs more tokens than the neurons compared; a too short text gets a ValueError that
        says how many, and ``lm.similarity([...])`` stacks several texts or results.
        """
        compare.check(method, source, dims)
        if self.result_id is None:
            raise ValueError("this output is not connected to a daemon result")
        reply = self._call(compare.states_params(self.result_id, source, layer_a, layer_b))["data"]
        return compare.compare(method, [compare.layer_pair(reply)], dims)

    @asks_daemon
    def cca(self, layer_a: int, layer_b: int, source: str = "hidden", dims: int | None = None) -> float:
        return self.similarity("cca", layer_a, layer_b, source, dims)

    @asks_daemon
    def svcca(self, layer_a: int, layer_b: int, source: str = "hidden", dims: int | None = None) -> float:
        return self.similarity("svcca", layer_a, layer_b, source, dims)

    @asks_daemon
    def pwcca(self, layer_a: int, layer_b: int, source: str = "hidden", dims: int | None = None) -> float:
        return self.similarity("pwcca", layer_a, layer_b, source, dims)

    @asks_daemon
    def cka(self, layer_a: int, layer_b: int, source: str = "hidden") -> float:
        return self.similarity("cka", layer_a, layer_b, source)

    @asks_daemon
    def states(self, what: str = "hidden", layers: Sequence[int] | None = None) -> np.ndarray:
        """A stored array of this run, fetched now: "hidden" (L, T, H) every layer's output (before the
        final norm), "embedding" (1, T, H) the first layer's input, "activations" (La, T, I) the MLP
        activations (``analysis["activation_layers"]`` names their layers). ``layers`` picks some."""
        params: dict[str, Any] = {"what": what}
        if layers is not None:
            params["layers"] = [int(i) for i in layers]
        return np.asarray(self._view("states", params)["values"])

    # -- surfaces ---------------------------------------------------------------------------------

    def views(self) -> list[ViewSpec]:
        """Everything the first reply can draw without asking the daemon again."""
        if self.analysis is None:
            return [view_spec("tokens", {"tokens": self._token_data(None)})]
        analysis = self._read()
        return analysis_views(analysis, tokens=self._token_data(analysis))

    @asks_daemon
    def explanation_views(self, n_components: int = 4) -> list[ViewSpec]:
        """Every view of this output, asking the daemon for those its first reply lacks: probability,
        saliency, each layer's predictions at every position (shown first: the first generated token; of a
        given text, the token after it), rankings, and neuron factors (``n_components``) where activations
        were kept."""
        if self.analysis is None or self.result_id is None or self.client is None:
            return self.views()
        if self.analysis.get("rankings") is None:
            self.rankings()  # computed by the daemon from its kept states, once
        analysis = self._read()
        # A generation: what each layer predicted for its first new token; a given text: for the next one.
        wanted = self.n_input_tokens if self.generated_tokens else len(analysis.tokens)
        predictable = analysis.predictable_positions()
        position = wanted if wanted in predictable else predictable[-1]
        analysis.layer_predictions = dict(self.layer_predictions(position).data)
        nmf = None
        if len(np.asarray(self.analysis.get("activation_layers", []))):
            nmf = views.nmf_view(analysis, self._view("nmf", {"n_components": n_components}))
        return analysis_views(analysis, tokens=self._token_data(analysis), nmf=nmf)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "result_id": self.result_id, "views": [v.to_json() for v in self.views()]}

    @asks_daemon
    def to_html(self, path: str | Path, *more: ViewSpec) -> Path:
        """One self-contained page (no CDN) with every view of ``explanation_views()``, then ``more`` views
        (``out.attention()``, ``out.rankings_watch([...], position)``, ...)."""
        return write_html(path, *self.explanation_views(), *more, title=f"Ecco: {self.model}")

    def _repr_html_(self) -> str:
        specs = self.views()
        return (specs[0] if len(specs) == 1 else tabs_view(specs))._repr_html_()

    # -- internals --------------------------------------------------------------------------------

    def _read(self) -> views.Analysis:
        if self.analysis is None:
            raise ValueError("this output holds no analysis: generate with attribution=[...] or use lm.analyze()")
        return views.read_analysis(self.analysis, self.model)

    def _spec(self, view: str, analysis: views.Analysis, data: dict[str, Any],
              options: dict[str, Any] | None = None) -> ViewSpec:
        """The view with this output's tokens (input and generated told apart)."""
        return view_spec(view, {**data, "tokens": self._token_data(analysis)}, options)

    def _token_data(self, analysis: views.Analysis | None) -> list[dict[str, Any]]:
        tokens = views.token_data(analysis) if analysis is not None else [
            {"text": t, "id": int(i), "special": False} for t, i in zip(self.tokens, self.token_ids, strict=True)]
        for index, token in enumerate(tokens):
            token["is_input"] = index < self.n_input_tokens
        return tokens

    def _view(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._call({"result_id": self.result_id, "view": name, "params": params})["data"]

    def _call(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.client is None or self.result_id is None:
            raise ValueError("this output is not connected to a daemon result")
        if not hasattr(self.client, "call") or _is_async(self.client):
            raise TypeError("views of an async client's output are coroutines: await out.<view>(...)")
        return self.client.call("view", params)


def _is_async(client: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(getattr(client, "call", None))
