"""The blocking client and model: twins of the async core (ecco_client.aio), run on a private loop thread.

Every method comes from the async class (see portal.py); this module adds only what a blocking
caller needs beyond it: closing the loop thread with the client, and Ctrl-C cancelling a request.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import replace
from typing import Any

from ecco_client.aio.client import AsyncClient
from ecco_client.aio.client import connect as aconnect
from ecco_client.aio.model import AsyncLanguageModel
from ecco_client.aio.output import AsyncOutput
from ecco_client.aio.request import RequestStream
from ecco_client.exceptions import DaemonUnavailable
from ecco_client.output import Output
from ecco_client.portal import Blocking, Portal, register


class Client(Blocking, twin_of=AsyncClient):
    def __init__(self, loop: Portal, inner: AsyncClient) -> None:
        self.portal, self.inner = loop, inner

    def close(self) -> None:
        if self.portal.closed:
            return
        try:
            self.portal.run(self.inner.close())
        finally:
            self.portal.stop()

    def __exit__(self, *exc: object) -> None:
        self.close()


class RequestHandle(Blocking, twin_of=RequestStream):
    """One request seen from a blocking caller: iterate its events, then take its result."""

    @property
    def stream(self) -> RequestStream:
        """The async stream behind this handle."""
        return self.inner

    def result(self) -> dict[str, Any]:
        """The answer; Ctrl-C while waiting for it cancels the request on the daemon."""
        try:
            return self.portal.run(self.inner.result())
        except KeyboardInterrupt:
            self.cancel()
            raise


class LanguageModel(Blocking, twin_of=AsyncLanguageModel):
    """A model on the daemon, with Ecco's vocabulary: ``lm.generate(text, generate=N)``."""


# An Output asks the daemon for more views through its client: a blocking caller's, the blocking client.
register(Output, lambda output, portal: replace(output, client=portal.convert(output.client)))
register(AsyncOutput, lambda output, portal: portal.convert(output.output))


@functools.wraps(aconnect)
def connect(*args: Any, **kwargs: Any) -> Client:
    portal = Portal(lambda: DaemonUnavailable("this client is closed"))
    try:
        return portal.convert(aconnect(*args, **kwargs))
    except BaseException:
        portal.stop()
        raise


connect.__signature__ = inspect.signature(aconnect).replace(return_annotation=Client)  # type: ignore[attr-defined]
