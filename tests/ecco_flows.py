"""Ecco's documented flows, written here from its documented API, run against ``ecco_client.ecco``.

Each flow takes the ``ecco`` module and a model name, and uses only Ecco's API: with ``import ecco``
and an Ecco model name it is an Ecco notebook. The tests (tiny models in tests/service, SmolLM2 in
tests/integration) call them with this project's module and check what they return.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

PROMPT = "The capital of France is"
# Long enough that CCA has more tokens than the neurons compared (NEURONS of each side, so 2 * NEURONS).
LONG_TEXT = (
    "A language model reads text one token at a time. Each layer of the model refines what the layer "
    "before it computed, and the last layer predicts the next token. The capital of France is Paris, "
    "and the capital of Germany is Berlin. The cat sat on the mat, and the dog slept by the door. "
    "She said that he would come back tomorrow morning with the books."
)
NEURONS = 16  # the first neurons of each representation compared by CCA (Ecco's examples cut to 50)


def token_scores_and_layer_predictions(ecco: ModuleType, model_name: str) -> dict[str, Any]:
    lm = ecco.from_pretrained(model_name, verbose=False)
    output = lm.generate(PROMPT, generate=4, do_sample=False)
    position = output.n_input_tokens  # the first generated token
    every_layer = output.layer_predictions(position=position, topk=5, printJson=True)
    last_layer = output.layer_predictions(position=position, layer=lm.model_config["n_layers"] - 1, topk=3,
                                          printJson=True)
    view = output.layer_predictions(position=position, topk=5)
    return {"lm": lm, "output": output, "every_layer": every_layer, "last_layer": last_layer, "view": view}


def rankings_watch_on_tokenizer_ids(ecco: ModuleType, model_name: str) -> dict[str, Any]:
    lm = ecco.from_pretrained(model_name, verbose=False)
    output = lm.generate("The keys to the cabinet", generate=1, do_sample=False)
    watch = [lm.tokenizer(word, add_special_tokens=False)["input_ids"][0] for word in (" is", " are")]
    chosen = int(output.token_ids[0][-1])  # the token the model produced
    position = output.n_input_tokens
    watched = output.rankings_watch(watch=[*watch, chosen], position=position, printJson=True)
    rankings = output.rankings(printJson=True)
    view = output.rankings_watch(watch=watch, position=position)
    return {"lm": lm, "output": output, "watch": watch, "chosen": chosen, "watched": watched,
            "rankings": rankings, "view": view}


def primary_attributions_both_styles(ecco: ModuleType, model_name: str) -> dict[str, Any]:
    lm = ecco.from_pretrained(model_name, verbose=False)
    output = lm.generate(PROMPT, generate=3, do_sample=False, attribution=["ig", "grad_x_input"])
    views = {(method, style): output.primary_attributions(attr_method=method, style=style)
             for method in ("ig", "grad_x_input") for style in ("minimal", "detailed")}
    data = output.primary_attributions(attr_method="ig", printJson=True)
    return {"output": output, "views": views, "data": data, "attribution": output.attribution}


def neuron_factors(ecco: ModuleType, model_name: str) -> dict[str, Any]:
    lm = ecco.from_pretrained(model_name, activations=True, verbose=False)
    output = lm.generate(PROMPT, generate=4, do_sample=False)
    every_layer = output.run_nmf(n_components=4)
    explorer = every_layer.explore()
    some_layers = output.run_nmf(n_components=3, from_layer=0, to_layer=1)
    figure = some_layers.plot()
    return {"output": output, "every_layer": every_layer, "explorer": explorer, "some_layers": some_layers,
            "figure": figure, "activations": output.activations}


def cca_embeddings_to_layers(ecco: ModuleType, model_name: str) -> dict[str, Any]:
    lm = ecco.from_pretrained(model_name, verbose=False)
    inputs = lm.tokenizer([LONG_TEXT], return_tensors="pt")
    output = lm(inputs)
    embeddings = output.embedding_states[0].T[:NEURONS]  # (neurons, tokens)
    layers = output._get_encoder_hidden_states()
    scores = [ecco.analysis.cca(embeddings, layer[0].T[:NEURONS]) for layer in layers]
    same = ecco.analysis.cca(embeddings, embeddings)
    return {"inputs": inputs, "output": output, "scores": scores, "same": same, "n_layers": len(layers)}
