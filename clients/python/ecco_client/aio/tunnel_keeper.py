"""Keeps a client's SSH tunnel open: when its ssh child exits, the tunnel is reopened, with backoff.

Why: a tunnel dies with its ssh process (a killed ssh at once, a dropped link after the keep-alives)
while the daemon on the far side keeps running, and a caller should not have to connect again. The
keeper tells the client at once (requests in flight fail with ssh's words, as before), then tries to
reopen it on the same local port, 0.5 s after the loss and then doubling up to a cap, with jitter.
A request made meanwhile waits for the tunnel up to the client's timeout (``wait_up``), then fails
with DaemonUnavailable carrying the last attempt's ssh error. A refusal that only the user can fix (the
key is no longer accepted, the host key changed) ends the retries: a server that counts failed logins
is not hammered into banning the user, and every request then fails at once with ssh's words until
the user connects again. Listeners (the language server's status bar) hear every change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from ecco_client.exceptions import DaemonUnavailable
from ecco_client.ssh_tunnel import SshAuthError, SshHostKeyError, SshTunnel, SshTunnelError

log = logging.getLogger(__name__)

REOPEN_FIRST_S = 0.5
REOPEN_MAX_S = 15.0
JITTER = 0.25  # each wait is the backoff delay times 1 ± JITTER, so many clients do not retry in step
FINAL_REFUSALS = (SshAuthError, SshHostKeyError)  # retrying cannot fix these; the user must


@dataclass(frozen=True)
class TunnelState:
    """The tunnel as a listener sees it: up (reopened), or down with why (ssh's words)."""

    up: bool
    message: str
    error: DaemonUnavailable | None = None


TunnelListener = Callable[[TunnelState], None]


class TunnelKeeper:
    """Watches one SshTunnel for its client and reopens it in place when its ssh child dies.

    ``on_down(error)`` runs on the loop when the tunnel is lost; ``on_up(address)`` when it is back.
    """

    def __init__(self, tunnel: SshTunnel, on_down: Callable[[DaemonUnavailable], None],
                 on_up: Callable[[str], None]) -> None:
        self.tunnel = tunnel
        self._on_down = on_down
        self._on_up = on_up
        self._loop = asyncio.get_running_loop()
        self._up = asyncio.Event()
        self._up.set()
        self._error: DaemonUnavailable | None = None
        self._listeners: list[TunnelListener] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._gave_up: DaemonUnavailable | None = None  # a final refusal: no more attempts
        tunnel.add_exit_listener(self._exited_threadsafe)
        if not tunnel.alive:  # it died before we listened
            self._loop.call_soon(self._exited)

    @property
    def up(self) -> bool:
        return self._up.is_set() and not self._closed and self._gave_up is None

    def watch(self, listener: TunnelListener) -> Callable[[], None]:
        """Calls ``listener`` with each change; returns a function that stops the calls."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def wait_up(self, timeout: float) -> None:
        """Returns once the tunnel is up; after ``timeout`` seconds, raises why it is still down."""
        if not self._up.is_set():
            try:
                await asyncio.wait_for(self._up.wait(), timeout)
            except asyncio.TimeoutError:
                raise self._still_down(timeout) from None
        if self._closed:
            raise DaemonUnavailable("the client was closed")
        if self._gave_up is not None:
            raise self._still_down(timeout)

    async def close(self) -> None:
        """Stops reopening; the client closes the tunnel itself."""
        self._closed = True
        self.tunnel.remove_exit_listener(self._exited_threadsafe)
        self._listeners.clear()
        self._up.set()  # wakes waiters, who see the client closed
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # ------------------------------------------------------------------------------------ internals

    def notice_exit(self) -> None:
        """The client saw the connection drop with ssh dead: go down at once (the exit report is then a no-op)."""
        self._exited()

    def _exited_threadsafe(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed, and the client with it
            self._loop.call_soon_threadsafe(self._exited)

    def _exited(self) -> None:
        # Closing, already reopening, or a late report of a child that a reopen has replaced: nothing new.
        if self._closed or not self._up.is_set() or self.tunnel.alive or self._gave_up is not None:
            return
        try:
            self.tunnel.check()
            error = DaemonUnavailable(f"the SSH tunnel to {self.tunnel.target} stopped")
        except DaemonUnavailable as exc:
            error = exc
        self._up.clear()
        self._error = error
        log.warning("reopening the SSH tunnel: %s", error)
        self._on_down(error)
        self._tell(TunnelState(up=False, message=f"reopening the SSH tunnel: {error}", error=error))
        self._task = asyncio.ensure_future(self._reopen())

    async def _reopen(self) -> None:
        delay = REOPEN_FIRST_S
        while True:
            # Back-off between attempts, not a wait for an outcome.
            await asyncio.sleep(delay * random.uniform(1 - JITTER, 1 + JITTER))
            try:
                await self._attempt()
                break
            except Exception as exc:
                error = exc if isinstance(exc, DaemonUnavailable) else DaemonUnavailable(
                    f"reopening the SSH tunnel to {self.tunnel.target} failed: {exc}")
                self._error = error
                if isinstance(error, FINAL_REFUSALS):
                    self._give_up(error)
                    return
                delay = min(delay * 2, REOPEN_MAX_S)
                log.info("could not reopen the SSH tunnel yet (next try in about %.1fs): %s", delay, error)
                self._tell(TunnelState(up=False, message=f"still reopening the SSH tunnel: {error}", error=error))
        self._error = None
        self._on_up(self.tunnel.local_address)  # the socket reconnects before waiting requests go out
        self._up.set()
        log.info("reopened the SSH tunnel to %s at %s", self.tunnel.target, self.tunnel.local_address)
        self._tell(TunnelState(up=True, message="reopened the SSH tunnel"))

    async def _attempt(self) -> None:
        """One reopen, in a thread (it waits for ssh); cancelling the wait leaves the thread to finish."""
        attempt = asyncio.ensure_future(asyncio.to_thread(self._reopen_unless_closed))
        attempt.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved, even if cancelled
        await asyncio.shield(attempt)

    def _give_up(self, error: DaemonUnavailable) -> None:
        self._gave_up = error
        log.error("stopped reopening the SSH tunnel to %s; connect again once this is fixed: %s",
                  self.tunnel.target, error)
        self._tell(TunnelState(up=False, message=f"stopped reopening the SSH tunnel: {error}", error=error))
        self._up.set()  # wakes the waiting requests, which fail with the refusal now

    def _reopen_unless_closed(self) -> None:
        self.tunnel.reopen()
        if self._closed:  # the client closed while ssh was starting: no child may outlive it
            self.tunnel.close()

    def _still_down(self, timeout: float) -> DaemonUnavailable:
        """The error for a request that waited in vain: the last attempt's, with ssh's words kept."""
        error = self._gave_up or self._error
        reason = error.reason if isinstance(error, SshTunnelError) else str(error)
        if self._gave_up is not None:
            message = (f"the SSH tunnel to {self.tunnel.target} is down and will not be reopened (connect "
                       f"again once this is fixed): {reason}")
        else:
            message = (f"the SSH tunnel to {self.tunnel.target} is down and was not reopened within "
                       f"{timeout:g}s: {reason}")
        if isinstance(error, SshTunnelError):
            return type(error)(message, stderr=error.stderr, returncode=error.returncode)
        return DaemonUnavailable(message)

    def _tell(self, state: TunnelState) -> None:
        for listener in list(self._listeners):
            try:
                listener(state)
            except Exception:  # a faulty listener must not stop the reopening
                log.exception("a tunnel listener failed")
