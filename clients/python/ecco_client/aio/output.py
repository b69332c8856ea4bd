"""The async client's Output: the same object, with the views that ask the daemon as coroutines.

Why: the view code lives once, in ``Output`` (blocking, as Ecco's API is). An async caller awaits the
views marked ``@asks_daemon``; each runs in a worker thread whose daemon calls are sent on the
caller's event loop (``LoopBridge``), so nothing blocks the loop and no view is written twice. Everything
else (fields, ``token_probabilities()``, ``_repr_html_``) is the Output's own.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ecco_client.output import Output


class LoopBridge:
    """A blocking ``call`` for a worker thread, sent by the async client on its own event loop."""

    def __init__(self, client: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop

    def call(self, op: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return asyncio.run_coroutine_threadsafe(self.client.call(op, params), self.loop).result()


class AsyncOutput:
    """What the async client's ``generate`` and ``analyze`` return: ``await out.layer_predictions(5)``."""

    def __init__(self, output: Output) -> None:
        self.output = output

    def __getattr__(self, name: str) -> Any:
        if name == "output":
            raise AttributeError(name)
        return getattr(self.output, name)

    def __str__(self) -> str:
        return str(self.output)

    def __repr__(self) -> str:
        return f"<async {self.output!r}>"

    def _repr_html_(self) -> str:
        return self.output._repr_html_()


def _awaitable(name: str, member: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(member)
    async def view(self: AsyncOutput, *args: Any, **kwargs: Any) -> Any:
        bridged = replace(self.output, client=LoopBridge(self.output.client, asyncio.get_running_loop()))
        return await asyncio.to_thread(getattr(bridged, name), *args, **kwargs)

    return view


for _name, _member in vars(Output).items():
    if getattr(_member, "asks_daemon", False):
        setattr(AsyncOutput, _name, _awaitable(_name, _member))
