"""Listing and loading models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecco_protocol.errors import ErrorCode

from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job
from ecco_daemon.server.params import ParamReader, no_params
from ecco_daemon.server.registry import OPERATIONS


@OPERATIONS.control("models.list", parse=no_params)
def list_models(ctx: RuntimeContext, job: Job, params: dict[str, Any]) -> dict[str, Any]:
    return {"models": ctx.models.describe()}


@dataclass(frozen=True)
class LoadRequest:
    spec: str
    name: str | None
    dtype: str | None
    device: str | None
    attn_implementation: str | None
    trust_remote_code: bool

    @classmethod
    def parse(cls, params: dict[str, Any]) -> LoadRequest:
        read = ParamReader(params, ["model", "name", "dtype", "device", "attn_implementation", "trust_remote_code"])
        return cls(
            spec=read.str("model", max_length=4096),
            name=read.str("name", None, max_length=200),
            dtype=read.choice("dtype", ["auto", "float32", "float16", "bfloat16"], None),
            device=read.str("device", None, max_length=64),
            attn_implementation=read.choice("attn_implementation", ["eager", "sdpa"], None),
            trust_remote_code=read.bool("trust_remote_code", False),
        )


@OPERATIONS.job("models.load", parse=LoadRequest.parse, admin_only=True)
def load_model(ctx: RuntimeContext, job: Job, request: LoadRequest) -> dict[str, Any]:
    if request.trust_remote_code and request.spec not in ctx.config.trust_remote_code_models:
        # Remote code runs with the daemon's rights: only for models the admin named at start.
        raise OperationError(ErrorCode.FORBIDDEN,
                             f"trust_remote_code is off for {request.spec!r}; start the daemon with "
                             f"--trust-remote-code {request.spec} to allow it")
    job.progress("loading", model=request.spec)
    options: dict[str, Any] = {"trust_remote_code": request.trust_remote_code}
    for key in ("dtype", "device", "attn_implementation"):
        if getattr(request, key) is not None:
            options[key] = getattr(request, key)
    model = ctx.models.load(request.spec, name=request.name, **options)
    return {"model": model.describe()}


@OPERATIONS.control("models.unload", admin_only=True)
def unload_model(ctx: RuntimeContext, job: Job, params: dict[str, Any]) -> dict[str, Any]:
    name = ParamReader(params, ["model"]).str("model")
    return {"model": name, "unloaded": ctx.models.unload(name)}
