"""The models this daemon holds: one copy of each, shared by every user.

With ``weights=False`` (model replicas elsewhere hold the weights) each entry is shape-only: tokenizer,
config and modules on the meta device, enough to check and route requests. Listeners hear of loads and
unloads, so an executor can start or stop the replicas of a model loaded while the daemon runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ecco_protocol.errors import ErrorCode

from ecco_daemon.server.errors import OperationError

if TYPE_CHECKING:
    from ecco_daemon.models.loaded import LoadedModel

log = logging.getLogger(__name__)


ModelListener = Callable[["LoadedModel", dict[str, Any]], None]


class ModelRegistry:
    def __init__(self, device: str | None = None, dtype: str = "float32", compile_decode: str = "auto",
                 weights: bool = True) -> None:
        self.device = device
        self.dtype = dtype
        self.compile_decode = compile_decode
        self.weights = weights
        # Called with (model, load options) after a load, and (model, {}) after an unload; a load listener
        # that raises undoes the load (MODEL_LOAD_FAILED).
        self.on_load: list[ModelListener] = []
        self.on_unload: list[ModelListener] = []
        self._models: dict[str, LoadedModel] = {}
        self._loads: dict[str, dict[str, Any]] = {}  # how each was loaded: a replica loads it the same way
        self._lock = threading.Lock()
        # Serializes loading, so two requests for the same model never load it twice.
        self._load_lock = threading.Lock()

    def load(self, spec: str, *, name: str | None = None, **options: Any) -> LoadedModel:
        from ecco_daemon.models.loader import ModelLoadError, load_model

        with self._load_lock:
            existing = self.find(name or spec)
            if existing is not None:
                return existing
            options.setdefault("device", self.device)
            options.setdefault("dtype", self.dtype)
            options.setdefault("compile_decode", self.compile_decode)
            try:
                model = load_model(spec, name=name, shape_only=not self.weights, **options)
            except ModelLoadError as exc:
                raise OperationError(ErrorCode.MODEL_LOAD_FAILED, str(exc), {"spec": spec}) from exc
            load = {"spec": spec, "name": model.name, **options}
            try:
                for listener in self.on_load:
                    listener(model, load)
            except OperationError:
                self._forget(model)
                raise
            except Exception as exc:
                self._forget(model)
                raise OperationError(ErrorCode.MODEL_LOAD_FAILED, f"could not start {model.name}: {exc}",
                                     {"spec": spec}) from exc
            with self._lock:
                self._models[model.name] = model
                self._loads[model.name] = load
            log.info("loaded %s from %s in %.1fs", model.name, model.source, model.load_seconds)
            return model

    def _forget(self, model: LoadedModel) -> None:
        for listener in self.on_unload:
            listener(model, {})

    def find(self, name: str) -> LoadedModel | None:
        with self._lock:
            if name in self._models:
                return self._models[name]
            return next((m for m in self._models.values() if m.source == name), None)

    def get(self, name: str | None) -> LoadedModel:
        """The named model; with no name, the only one loaded (or the first loaded)."""
        with self._lock:
            if name is None and self._models:
                return next(iter(self._models.values()))
        model = self.find(name) if name is not None else None
        if model is None:
            raise OperationError(
                ErrorCode.MODEL_NOT_FOUND,
                f"model {name!r} is not loaded; loaded: {', '.join(self.names()) or 'none'}",
                {"loaded": self.names()},
            )
        return model

    def unload(self, name: str) -> bool:
        with self._lock:
            model = self._models.pop(name, None)
            self._loads.pop(name, None)
        if model is not None:
            self._forget(model)
        return model is not None

    def loaded(self) -> list[tuple[LoadedModel, dict[str, Any]]]:
        """Every model with the options it was loaded with."""
        with self._lock:
            return [(model, self._loads[name]) for name, model in self._models.items()]

    def names(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            models = list(self._models.values())
        return [m.describe() for m in models]
