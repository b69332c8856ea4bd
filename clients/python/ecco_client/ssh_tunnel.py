"""A managed SSH tunnel to a daemon on a remote host: one ``ssh -N -L`` child, owned by this process.

The daemon on a GPU host binds loopback only; the client reaches it by forwarding a local port through SSH.
``SshTunnel`` starts ``ssh -N -L 127.0.0.1:<free port>:<remote host>:<remote port> user@host``, waits until
the forward really reaches the remote end, hands out ``local_address`` (``tcp://127.0.0.1:<port>``), and
stops the child on ``close()``, on context exit, on garbage collection and at interpreter exit; on Linux
the child also gets SIGTERM if this process dies without cleaning up (``PR_SET_PDEATHSIG``).

Why a managed ``ssh`` child rather than pyzmq's ``zmq.ssh``: ``zmq.ssh`` needs paramiko or pexpect. Its
paramiko route adds a dependency, forwards bytes in a Python thread, and ignores ``~/.ssh/config``, agents
and jump hosts unless rebuilt by hand. Its pexpect route runs ``ssh -f ... sleep 60`` in the background: the
tunnel dies a minute after the last connection closes (so a ZeroMQ reconnect finds nothing), it prompts for
passwords on the terminal (a language server has none), it checks nothing beyond ssh having forked, and
nothing stops it at exit. The system ``ssh`` honours the user's config, agent, ProxyJump and known_hosts
as it is; running it in BatchMode with no TTY makes every failure an exit with a message on stderr, which
this module turns into a distinct exception (host key, authentication, unreachable server, busy local
port, nothing listening on the remote side). Each is a ``DaemonUnavailable``, so a caller of
``connect(ssh=...)`` catches one class either way. Needs only the standard library; no torch.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import ctypes
import functools
import math
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ecco_client.exceptions import DaemonUnavailable

__all__ = [
    "ForwardingProhibited",
    "RemoteTargetRefused",
    "SshAuthError",
    "SshConnectError",
    "SshForwardError",
    "SshHostKeyError",
    "SshTarget",
    "SshTunnel",
    "SshTunnelError",
    "forward_spec",
    "parse_remote_address",
    "parse_ssh_target",
]

DEFAULT_TIMEOUT_S = 20.0
STOP_GRACE_S = 5.0
LOCAL_PORT_ATTEMPTS = 3
# An ssh config file (-F) for every tunnel that names none: for editors, whose settings hold only user@host.
SSH_CONFIG_ENV = "ECCO_SSH_CONFIG"
STDERR_TAIL_LINES = 40


# --------------------------------------------------------------------------------------------- errors


class SshTunnelError(DaemonUnavailable, ConnectionError):
    """The tunnel could not be opened, or its ssh child died; ``stderr`` holds ssh's own words."""

    def __init__(self, message: str, *, stderr: str = "", returncode: int | None = None) -> None:
        detail = f"\nssh said:\n{stderr.strip()}" if stderr.strip() else ""
        super().__init__(message + detail)
        self.reason = message
        self.stderr = stderr
        self.returncode = returncode


class SshHostKeyError(SshTunnelError):
    """The server's host key is unknown or has changed (BatchMode never asks whether to trust it)."""


class SshAuthError(SshTunnelError):
    """The server refused every key offered (BatchMode never asks for a password or passphrase)."""


class SshConnectError(SshTunnelError):
    """The SSH server could not be reached: refused, timed out, unresolvable or closed on us."""


class SshForwardError(SshTunnelError):
    """ssh could not listen on the local port it was given."""


class ForwardingProhibited(SshTunnelError):
    """The SSH server does not allow TCP forwarding for this user (sshd's AllowTcpForwarding)."""


class RemoteTargetRefused(SshTunnelError):
    """SSH works, but nothing accepts connections at the remote address (is the daemon running there?)."""


_CLASSIFIERS: tuple[tuple[type[SshTunnelError], tuple[str, ...], str], ...] = (
    (
        SshHostKeyError,
        ("host key verification failed", "remote host identification has changed", "host key is known",
         "no matching host key"),
        "ssh refused the host key of {host}. Log in once with `ssh {host}` to check and record it, "
        "or name a known_hosts file with ssh_options=('UserKnownHostsFile=...',)",
    ),
    (
        SshAuthError,
        ("permission denied", "too many authentication failures"),
        "ssh could not log in to {host} with a key (passwords cannot be typed here): load a key into "
        "ssh-agent, or pass identity_file=",
    ),
    (
        SshForwardError,
        ("address already in use", "cannot listen to port", "could not request local forwarding"),
        "ssh could not listen on local port {local_port}",
    ),
    (
        SshConnectError,
        ("connection refused", "connection timed out", "operation timed out", "no route to host",
         "could not resolve hostname", "name or service not known", "network is unreachable",
         "connection closed by", "connection reset by", "kex_exchange_identification"),
        "could not reach the SSH server {host}",
    ),
)


def classify_failure(stderr: str, *, host: str, local_port: int, returncode: int | None) -> SshTunnelError:
    """Pick the exception that names what went wrong, from ssh's stderr."""
    lowered = stderr.lower()
    for error_class, needles, template in _CLASSIFIERS:
        if any(needle in lowered for needle in needles):
            return error_class(template.format(host=host, local_port=local_port), stderr=stderr,
                               returncode=returncode)
    message = f"ssh to {host} exited with status {returncode}"
    return SshTunnelError(message, stderr=stderr, returncode=returncode)


# ------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class SshTarget:
    """Where to log in: ``user@host:port``; user and port fall back to ssh's own config when absent."""

    host: str
    user: str | None = None
    port: int | None = None

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user + '@' if self.user else ''}{host}{':' + str(self.port) if self.port else ''}"


def _parse_port(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{what}: {text!r} is not a port number")
    return int(text)


def _split_host_port(text: str, what: str) -> tuple[str, int | None]:
    """'host', 'host:port', '[v6]' or '[v6]:port'; a bare IPv6 address (several colons) has no port."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{what}: unbalanced brackets in {text!r}")
        return host, _parse_port(rest[1:], what) if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, _parse_port(port, what)
    return text, None


def parse_ssh_target(text: str) -> SshTarget:
    """Parse ``[ssh://][user@]host[:port]``; refuse anything ssh could read as an option."""
    original = text
    text = text.strip()
    if text.startswith("ssh://"):
        text = text[len("ssh://"):].rstrip("/")
    user, at, rest = text.rpartition("@")
    host, port = _split_host_port(rest if at else text, f"ssh target {original!r}")
    if not host or host.startswith("-") or (at and (not user or user.startswith("-"))):
        raise ValueError(f"ssh target {original!r} must look like user@host or user@host:port")
    if any(ch.isspace() for ch in text):
        raise ValueError(f"ssh target {original!r} must not contain spaces")
    return SshTarget(host=host, user=user or None, port=port)


def parse_remote_address(address: str) -> tuple[str, int]:
    """The (host, port) to reach on the SSH server's side, from a ZeroMQ ``tcp://host:port`` address."""
    scheme, sep, rest = address.partition("://")
    if not sep or scheme != "tcp":
        raise ValueError(f"only tcp:// addresses can be tunnelled through SSH, not {address!r}")
    host, port = _split_host_port(rest, f"remote address {address!r}")
    if port is None or not host:
        raise ValueError(f"remote address {address!r} needs a host and a port")
    if host in ("*", "0.0.0.0"):  # a daemon bound everywhere is reachable on the remote loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, port


def forward_spec(local_port: int, remote_host: str, remote_port: int) -> str:
    """The ``-L`` argument; IPv6 remote hosts go in brackets, which ssh accepts."""
    remote = f"[{remote_host}]" if ":" in remote_host else remote_host
    return f"127.0.0.1:{local_port}:{remote}:{remote_port}"


def pick_free_port() -> int:
    """A loopback port the OS just handed out. ssh binds it a moment later; a lost race is retried."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ------------------------------------------------------------------------------- child process control


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec function asking Linux to SIGTERM the child when its parent dies; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_parent_death_signal


class _Spawner:
    """Starts children from one thread that lives as long as the process.

    Linux sends the parent-death signal when the *thread* that forked the child ends, not the process.
    Forking from a short-lived thread (an executor worker, ``asyncio.to_thread``) would kill the tunnel as
    soon as that thread finished, so every child is forked from this one daemon thread instead.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[list[str], dict[str, Any], concurrent.futures.Future[Any]]]
        self._requests = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="ecco-ssh-spawner", daemon=True)
                self._thread.start()
        future: concurrent.futures.Future[subprocess.Popen[bytes]] = concurrent.futures.Future()
        self._requests.put((args, kwargs, future))
        return future.result()

    def _serve(self) -> None:
        while True:
            args, kwargs, future = self._requests.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                preexec = _parent_death_signal()
                future.set_result(subprocess.Popen(args, preexec_fn=preexec, **kwargs))
            except BaseException as exc:  # handed to the caller, who re-raises it
                future.set_exception(exc)


_SPAWNER = _Spawner()


def _stop_child(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after a grace period; reap it so no zombie and no listening port remain."""
    if process.poll() is None:
        try:
            process.terminate()
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_GRACE_S)
        except ProcessLookupError:
            pass
    if process.stderr is not None:
        process.stderr.close()


class _StderrWatch:
    """Drains ssh's stderr in a thread (a full pipe would stall ssh) and keeps what matters.

    ssh runs at LogLevel DEBUG2 so that it reports each forwarded channel's fate: ``open confirm`` when the
    remote end accepted, ``open failed`` when it did not. Debug lines are otherwise dropped; the last
    other lines are kept for error messages.
    """

    def __init__(self, stream: Any, on_closed: Callable[[], None] = lambda: None) -> None:
        self._on_closed = on_closed
        self._cond = threading.Condition()
        self._tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self.lines = 0
        self.opened = 0
        self.failures: list[str] = []
        self.closed = False
        self._thread = threading.Thread(target=self._read, args=(stream,), name="ecco-ssh-stderr")
        self._thread.daemon = True
        self._thread.start()

    def _read(self, stream: Any) -> None:
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode(errors="replace").rstrip()
                with self._cond:
                    self.lines += 1
                    if re.search(r"channel \d+: open confirm", line):
                        self.opened += 1
                    elif re.search(r"channel \d+: open failed", line):
                        self.failures.append(line)
                    if not line.startswith("debug"):
                        self._tail.append(line)
                    self._cond.notify_all()
        except (OSError, ValueError):  # the pipe was closed under us by close()
            pass
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()
            self._on_closed()

    def text(self) -> str:
        with self._cond:
            return "\n".join(self._tail)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout=max(0.0, timeout))

    def wait_for_news(self, seen_lines: int, timeout: float) -> None:
        """Return once ssh has written more than seen_lines lines or closed stderr, or after timeout."""
        self.wait_for(lambda: self.lines != seen_lines or self.closed, timeout)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _announce_exit(process: subprocess.Popen[bytes], listeners: list[Callable[[], None]]) -> None:
    """Tell the exit listeners once ssh has really exited (its stderr closes a moment before)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_GRACE_S)
    for listener in list(listeners):
        listener()


# -------------------------------------------------------------------------------------------- tunnel


class SshTunnel:
    """``ssh -N -L`` to a remote ZeroMQ address, up and verified on return; a context manager.

    ``ssh`` is ``[user@]host[:port]`` (a ``~/.ssh/config`` alias works too). ``ssh_options`` are
    ``Key=Value`` strings passed as ``-o``; they win over this class's defaults (keep-alives, connect
    timeout) but not over what it needs (BatchMode, ExitOnForwardFailure, LogLevel). ``config_file``
    defaults to ``$ECCO_SSH_CONFIG`` when set, else ssh's own. ``check_remote`` makes one connection
    through the new tunnel and requires the remote end to accept it.
    """

    def __init__(
        self,
        ssh: str,
        remote_address: str = "tcp://127.0.0.1:5555",
        *,
        identity_file: str | os.PathLike[str] | None = None,
        ssh_options: Iterable[str] = (),
        local_port: int | None = None,
        config_file: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        check_remote: bool = True,
        ssh_executable: str = "ssh",
    ) -> None:
        self.target = parse_ssh_target(ssh)
        self.remote_host, self.remote_port = parse_remote_address(remote_address)
        self.remote_address = remote_address
        self.identity_file = os.path.expanduser(identity_file) if identity_file is not None else None
        if config_file is None:
            config_file = os.environ.get(SSH_CONFIG_ENV) or None
        self.config_file = os.path.expanduser(config_file) if config_file is not None else None
        self.ssh_options = tuple(ssh_options)
        for option in self.ssh_options:
            if "=" not in option or option.startswith("-"):
                raise ValueError(f"ssh option {option!r} must look like Key=Value")
        self.timeout = timeout
        self.check_remote = check_remote
        executable = shutil.which(ssh_executable)
        if executable is None:
            raise SshTunnelError(f"no {ssh_executable!r} program on PATH; install an OpenSSH client")
        self.ssh_executable = executable
        self._process: subprocess.Popen[bytes] | None = None
        self._watch: _StderrWatch | None = None
        self._finalizer: weakref.finalize | None = None
        self._exit_listeners: list[Callable[[], None]] = []
        self._port_is_fixed = local_port is not None
        self.local_port = self._open(local_port)

    # -- public surface

    @property
    def local_address(self) -> str:
        """The ZeroMQ address to connect to instead of the remote one."""
        return f"tcp://127.0.0.1:{self.local_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def check(self) -> None:
        """Raise SshTunnelError with ssh's last words when the child has died (e.g. the server went away)."""
        if self._process is None:
            raise SshTunnelError(f"the SSH tunnel to {self.target} is closed")
        returncode = self._process.poll()
        if returncode is not None:
            stderr = self._watch.text() if self._watch else ""
            raise SshTunnelError(f"the SSH tunnel to {self.target} stopped (ssh exited with {returncode})",
                                 stderr=stderr, returncode=returncode)

    def add_exit_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` from a background thread whenever an ssh child of this tunnel exits: when it
        dies, and also on ``close()`` and ``reopen()`` (check ``alive`` to tell them apart)."""
        self._exit_listeners.append(listener)

    def remove_exit_listener(self, listener: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._exit_listeners.remove(listener)

    def reopen(self) -> None:
        """Start a new ssh child in place of a dead one, verified as on opening (same errors).

        The local port stays the same when it is still free, so a ZeroMQ socket connected to it finds the
        new tunnel at the old address; a port picked by this class moves to a free one when taken.
        """
        self.close()
        try:
            self.local_port = self._open(self.local_port)
        except SshForwardError:
            if self._port_is_fixed:
                raise
            self.local_port = self._open(None)

    def close(self) -> None:
        """Stop the ssh child and free the local port; safe to call twice."""
        if self._finalizer is not None:
            self._finalizer()
        if self._watch is not None:
            self._watch.join(STOP_GRACE_S)
        self._process = None

    def __enter__(self) -> SshTunnel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self.alive else "closed"
        remote = f"{self.remote_host}:{self.remote_port}"
        return f"<SshTunnel {self.local_address} -> {self.target} {remote} {state}>"

    # -- building the command

    def command(self, local_port: int) -> list[str]:
        """The full ssh command line for a forward from local_port."""
        required = ("BatchMode=yes", "ExitOnForwardFailure=yes", "LogLevel=DEBUG2", "RequestTTY=no")
        defaults = [
            "ServerAliveInterval=15",
            "ServerAliveCountMax=3",
            f"ConnectTimeout={max(1, math.ceil(self.timeout))}",
            # An independent child that close() can stop, even if the user's config multiplexes sessions.
            "ControlMaster=no",
            "ControlPath=none",
        ]
        if self.identity_file is not None:
            defaults.append("IdentitiesOnly=yes")
        args = [self.ssh_executable, "-N", "-T", "-n"]
        if self.config_file is not None:
            args += ["-F", self.config_file]
        if self.target.port is not None:
            args += ["-p", str(self.target.port)]
        if self.identity_file is not None:
            args += ["-i", self.identity_file]
        # ssh keeps the first value it sees for an option: required ones first, then the caller's, then ours.
        for option in (*required, *self.ssh_options, *defaults):
            args += ["-o", option]
        args += ["-L", forward_spec(local_port, self.remote_host, self.remote_port)]
        args += ["--", self.target.destination]
        return args

    # -- opening

    def _open(self, local_port: int | None) -> int:
        attempts = 1 if local_port is not None else LOCAL_PORT_ATTEMPTS
        for attempt in range(attempts):
            port = local_port if local_port is not None else pick_free_port()
            try:
                self._start(port)
                return port
            except SshForwardError:
                self.close()
                if attempt + 1 == attempts:  # another process took the port between our pick and ssh's bind
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    def _start(self, local_port: int) -> None:
        deadline = time.monotonic() + self.timeout
        process = _SPAWNER.popen(
            self.command(local_port),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C in the terminal interrupts Python, not the tunnel
        )
        self._process = process
        # The listener list, not self: the watch thread must not keep the tunnel from being collected.
        self._watch = _StderrWatch(process.stderr, functools.partial(_announce_exit, process, self._exit_listeners))
        self._finalizer = weakref.finalize(self, _stop_child, process)
        probe = self._wait_listening(local_port, deadline)
        with probe:
            if self.check_remote:
                self._wait_remote_accepts(probe, local_port, deadline)

    def _failure(self, local_port: int) -> SshTunnelError:
        assert self._process is not None and self._watch is not None
        returncode = self._process.poll()
        self._watch.wait_for(lambda: self._watch.closed, STOP_GRACE_S)  # let the last stderr lines arrive
        return classify_failure(self._watch.text(), host=str(self.target), local_port=local_port,
                                returncode=returncode)

    def _wait_listening(self, local_port: int, deadline: float) -> socket.socket:
        """Poll until the local end accepts a connection; return that connection as the probe."""
        assert self._process is not None
        while True:
            if self._process.poll() is not None:
                raise self._failure(local_port)
            try:
                return socket.create_connection(("127.0.0.1", local_port), timeout=1.0)
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise SshTunnelError(
                    f"ssh to {self.target} did not open local port {local_port} within {self.timeout:g}s",
                    stderr=self._watch.text() if self._watch else "",
                )
            assert self._watch is not None
            # Wake early when ssh writes anything (e.g. "Local forwarding listening") or exits.
            self._watch.wait_for_news(self._watch.lines, 0.05)

    def _wait_remote_accepts(self, probe: socket.socket, local_port: int, deadline: float) -> None:
        """ssh reports the probe's channel as confirmed or failed; a ZeroMQ peer may also just greet us."""
        assert self._watch is not None and self._process is not None
        watch = self._watch
        probe.setblocking(False)
        while True:
            if watch.opened:
                return
            if any("prohibited" in line for line in watch.failures):
                raise ForwardingProhibited(
                    f"the SSH server {self.target} does not allow TCP forwarding (AllowTcpForwarding in its "
                    f"sshd_config, or a restriction on your key)",
                    stderr=watch.text(),
                )
            if watch.failures:
                raise RemoteTargetRefused(
                    f"SSH to {self.target} works, but nothing accepts connections at {self.remote_host}:"
                    f"{self.remote_port} on that host: is the daemon running and bound there?",
                    stderr=watch.text(),
                )
            if self._process.poll() is not None:
                raise self._failure(local_port)
            try:
                if probe.recv(1):  # the remote end spoke first (a ZeroMQ greeting): it is there
                    return
                # EOF without a reported failure: keep waiting for ssh's line about it.
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SshTunnelError(
                    f"ssh to {self.target} did not confirm the forward to {self.remote_host}:"
                    f"{self.remote_port} within {self.timeout:g}s (check_remote=False skips this check)",
                    stderr=watch.text(),
                )
            watch.wait_for(lambda: bool(watch.opened or watch.failures or watch.closed), min(remaining, 0.05))

