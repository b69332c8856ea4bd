"""Blocking twins of async classes, built from them, as jupyter_client builds its blocking client.

Why: the async classes are the one source of every method. A blocking twin gets each public method
and property of its async class, with the same name, signature and docstring, run on a private event
loop thread (which keeps it usable inside Jupyter, whose own loop is already running), so the two
cannot drift apart.

What a twin's method returns, by what the async method returns:
- a coroutine: it runs on the loop, and its value is converted as below;
- an object whose class has a twin (or a registered converter): the twin;
- an async iterable: a generator of its items; when the iterable has ``result()``, that result is
  the generator's return value, and closing the generator early closes the iterable;
- anything else: itself.
Callbacks given to async methods (``on_token``, ``on_event``) run on the loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import threading
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Generator
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")
Converter = Callable[[Any, "Portal"], Any]

_CONVERTERS: dict[type, Converter] = {}
# The blocking spelling of each async protocol method a twin mirrors.
_DUNDERS = {"__aiter__": "__iter__", "__aenter__": "__enter__", "__aexit__": "__exit__"}


def register(async_type: type, convert: Converter) -> None:
    """How a value of ``async_type`` returned by an async method reaches a blocking caller."""
    _CONVERTERS[async_type] = convert


class Portal:
    """An event loop on a daemon thread, and the conversions between its async world and blocking callers."""

    def __init__(self, closed_error: Callable[[], Exception]) -> None:
        self.loop = asyncio.new_event_loop()
        self._closed_error = closed_error
        self._twins: weakref.WeakValueDictionary[int, Blocking] = weakref.WeakValueDictionary()
        self._thread = threading.Thread(target=self.loop.run_forever, name="ecco-client-loop", daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self.loop.is_closed() or not self._thread.is_alive()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs ``coro`` on the loop and waits for it; Ctrl-C cancels it there, then propagates."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a blocking client call from its own loop thread (a callback?) would wait forever")
        if self.closed:
            coro.close()
            raise self._closed_error()
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()

    def convert(self, value: Any) -> Any:
        """An async method's return value as a blocking caller gets it (see the module docstring)."""
        if asyncio.iscoroutine(value):
            value = self.run(value)
        for klass in type(value).__mro__:
            if klass in _CONVERTERS:
                return _CONVERTERS[klass](value, self)
        if isinstance(value, AsyncIterable):
            return self.iterate(value)
        return value

    def twin(self, cls: type[Blocking], inner: Any) -> Blocking:
        """The one twin of ``inner`` (so ``lm.client`` is the client the caller holds)."""
        found = self._twins.get(id(inner))
        if found is None or found.inner is not inner:
            found = cls._of(inner, self)
            self._twins[id(inner)] = found
        return found

    def iterate(self, source: AsyncIterable[Any]) -> Generator[Any, None, Any]:
        """A generator of the items of ``source``, each fetched on the loop; returns ``source.result()``."""
        iterator = source.__aiter__()
        try:
            while True:
                try:
                    item = self.run(_next(iterator))
                except StopAsyncIteration:
                    break
                yield self.convert(item)
        except GeneratorExit:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):  # on the loop thread or after close: the loop finalizes it
                    self.run(close())
            raise
        result = getattr(source, "result", None)
        return self.convert(result()) if callable(result) else None


async def _next(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()


class Blocking:
    """The blocking twin of one async object: ``class LanguageModel(Blocking, twin_of=AsyncLanguageModel)``.

    Constructed like the async class, with blocking twins where it takes async objects.
    """

    _async_type: ClassVar[type]
    inner: Any
    portal: Portal

    def __init_subclass__(cls, *, twin_of: type, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._async_type = twin_of
        for name, member in _public_members(twin_of).items():
            blocking_name = _DUNDERS.get(name, name)
            if blocking_name not in vars(cls):  # the twin's own definition wins
                setattr(cls, blocking_name, _blocking_member(name, member))
        if cls.__doc__ is None:
            cls.__doc__ = twin_of.__doc__
        if "__init__" not in vars(cls):
            cls.__signature__ = inspect.signature(twin_of)  # type: ignore[attr-defined]
        register(twin_of, lambda inner, portal: portal.twin(cls, inner))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        twins = [a for a in (*args, *kwargs.values()) if isinstance(a, Blocking)]
        if not twins:
            raise TypeError(f"{type(self).__name__} takes a blocking client")
        args, kwargs = _unwrapped(args, kwargs)
        self.inner = self._async_type(*args, **kwargs)
        self.portal = twins[0].portal

    @classmethod
    def _of(cls, inner: Any, portal: Portal) -> Blocking:
        twin = cls.__new__(cls)
        twin.inner, twin.portal = inner, portal
        return twin

    def __getattr__(self, name: str) -> Any:
        """Plain attributes of the async object (``name``, ``address``, ``request_id``…)."""
        if name.startswith("_") or name in ("inner", "portal"):
            raise AttributeError(name)
        return self.portal.convert(getattr(self.inner, name))

    def __repr__(self) -> str:
        return f"<blocking {self.inner!r}>"


def _public_members(async_type: type) -> dict[str, Any]:
    """Public methods and properties, and the async protocol methods, the nearest class's first."""
    members: dict[str, Any] = {}
    for klass in reversed(async_type.__mro__[:-1]):
        for name, member in vars(klass).items():
            if (not name.startswith("_") or name in _DUNDERS) and (callable(member) or isinstance(member, property)):
                members[name] = member
    return members


def _blocking_member(name: str, member: Any) -> Any:
    if isinstance(member, property):
        return property(lambda self: self.portal.convert(getattr(self.inner, name)), doc=member.__doc__)

    @functools.wraps(member)
    def method(self: Blocking, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = _unwrapped(args, kwargs)
        return self.portal.convert(getattr(self.inner, name)(*args, **kwargs))

    # The parameters are the async method's; what it returns is converted, so its annotation would mislead.
    method.__signature__ = inspect.signature(member).replace(return_annotation=inspect.Signature.empty)  # type: ignore[attr-defined]
    return method


def _unwrapped(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments for the async side: each blocking twin replaced by its async object."""
    def inner(value: Any) -> Any:
        return value.inner if isinstance(value, Blocking) else value

    return tuple(map(inner, args)), {k: inner(v) for k, v in kwargs.items()}
