"""Ecco's API on a daemon: change ``import ecco`` to ``from ecco_client import ecco`` and keep the notebook.

``ecco.from_pretrained(name)`` connects to the daemon in the user's connection file; when none runs,
it starts a private one for this process (stopped when the process exits) with that model. The model
then lives in the daemon: loading it again in another notebook takes no time, and what a run produced
stays in the daemon's result store for later views. See docs/from-ecco.md for every call and what
differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecco_client.autostart import Autostart
from ecco_client.blocking import Client, connect
from ecco_client.ecco import analysis
from ecco_client.ecco.lm import LM
from ecco_client.ecco.notes import EccoCompatNote, note
from ecco_client.ecco.output import OutputSeq
from ecco_client.exceptions import Forbidden

__all__ = ["LM", "EccoCompatNote", "OutputSeq", "analysis", "from_pretrained"]

_IGNORED = {"model_config": None, "hidden_states": True, "cache_dir": None}


def from_pretrained(hf_model_id: str, model_config: dict[str, Any] | None = None, activations: bool = False,
                    attention: bool = False, hidden_states: bool = True,
                    activations_layer_nums: list[int] | None = None, verbose: bool = True, gpu: bool = True,
                    multi_gpu: bool = False, cache_dir: str | None = None, torch_dtype: Any = None, *,
                    connection_file: str | Path | None = None, timeout: float = 60.0) -> LM:
    """An ``LM`` for ``hf_model_id`` (hub id, local folder, ``.gguf`` file or alias) held by a daemon.

    Used: ``activations``, ``activations_layer_nums``, ``attention`` (every run keeps attention weights),
    ``verbose`` (prints tokens as they stream), and, where this call loads the model, ``gpu=False``
    (CPU), ``multi_gpu`` (``device_map="auto"``) and ``torch_dtype``. ``model_config`` (the daemon
    inspects the architecture), ``hidden_states`` (always kept) and ``cache_dir`` (the daemon keeps
    its own cache) are ignored with a note.
    """
    given = {"model_config": model_config, "hidden_states": hidden_states, "cache_dir": cache_dir}
    ignored = [name for name, value in given.items() if value != _IGNORED[name]]
    if ignored:
        note(f"ignored here: {', '.join(ignored)} (the daemon inspects the model and keeps every layer's states)")
    options = _load_options(gpu, multi_gpu, torch_dtype)
    local = Path(hf_model_id).expanduser()
    spec = str(local.resolve()) if local.exists() else hf_model_id  # the daemon names local folders by full path
    # A private daemon starts empty: the model is loaded below with every option (we are its admin).
    client = connect(connection_file=connection_file, timeout=timeout, autostart=Autostart(models=[]))
    description = _loaded(client, spec, options)
    return LM(client.model(description["name"]), description, activations=activations,
              activations_layer_nums=activations_layer_nums, attention=attention, verbose=verbose)


def _load_options(gpu: bool, multi_gpu: bool, torch_dtype: Any) -> dict[str, Any]:
    """How the daemon loads the model. Attention needs nothing here: the daemon records attention
    weights with an eager twin of whatever it loaded."""
    options: dict[str, Any] = {}
    if not gpu:
        options["device"] = "cpu"
    elif multi_gpu:
        options["device"] = "auto"
    if torch_dtype is not None:
        options["dtype"] = str(torch_dtype).removeprefix("torch.")
    return options


def _loaded(client: Client, spec: str, options: dict[str, Any]) -> dict[str, Any]:
    """The model's description, loading it first when the daemon lacks it and this user may load."""
    for model in client.list_models():
        if spec in (model["name"], model["source"]):
            if options:
                note(f"{spec} is already loaded on the daemon; its options ({', '.join(options)}) stay as they were")
            return model
    try:
        return client.load_model(spec, **options)
    except Forbidden as exc:
        raise Forbidden(exc.code, f"{spec!r} is not loaded on the daemon at {client.address}, and only an admin "
                                  f"may load models: ask the admin to load it (`ecco-daemon serve --model {spec}`)",
                        exc.details) from None
