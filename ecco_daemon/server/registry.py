"""Registration of operations by name; duplicates are refused at import time (as pygls's feature manager)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

# A control operation runs on the socket loop and must return at once (ping, status, cancel).
# A job operation is parsed on the loop (so bad input fails fast) and runs on a worker.
Kind = Literal["control", "job"]
Parser = Callable[[dict[str, Any]], Any]
# handler(ctx: RuntimeContext, job: Job, params) -> result. Typed loosely here so that the registry, which
# jobs name, depends on neither jobs nor the runtime; each handler annotates its own arguments.
Handler = Callable[[Any, Any, Any], dict[str, Any] | None]


@dataclass(frozen=True)
class Operation:
    name: str
    kind: Kind
    handler: Handler
    parse: Parser
    admin_only: bool = False


def _no_params(params: dict[str, Any]) -> dict[str, Any]:
    return params


class OperationRegistry:
    def __init__(self) -> None:
        self._operations: dict[str, Operation] = {}

    def register(self, name: str, kind: Kind, *, parse: Parser | None = None,
                 admin_only: bool = False) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            if name in self._operations:
                raise ValueError(f"operation {name!r} is registered twice")
            self._operations[name] = Operation(name, kind, handler, parse or _no_params, admin_only)
            return handler

        return decorator

    def control(self, name: str, *, parse: Parser | None = None, admin_only: bool = False):
        return self.register(name, "control", parse=parse, admin_only=admin_only)

    def job(self, name: str, *, parse: Parser | None = None, admin_only: bool = False):
        return self.register(name, "job", parse=parse, admin_only=admin_only)

    def get(self, name: str) -> Operation | None:
        return self._operations.get(name)

    def names(self) -> list[str]:
        return sorted(self._operations)


OPERATIONS = OperationRegistry()
