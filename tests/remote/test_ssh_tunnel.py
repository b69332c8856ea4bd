"""SshTunnel against a real sshd on loopback: forwarding, clean shutdown, and a clear error per failure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from ecco_client.ssh_tunnel import (
    ForwardingProhibited,
    RemoteTargetRefused,
    SshAuthError,
    SshConnectError,
    SshForwardError,
    SshHostKeyError,
    SshTarget,
    SshTunnel,
    SshTunnelError,
    forward_spec,
    parse_remote_address,
    parse_ssh_target,
)

from .conftest import CLIENT_SRC, EchoServer
from .sshd import SshServer, make_key

DEADLINE_S = 15.0


def wait_until(condition: Any, what: str, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def pid_running(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def port_is_free(port: int) -> bool:
    """Nothing listens there any more. SO_REUSEADDR, as ssh and ZeroMQ set it, looks past TIME_WAIT
    leftovers of connections that ssh closed first."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def echo_roundtrip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as conn:
        sender = threading.Thread(target=conn.sendall, args=(payload,))
        sender.start()
        received = bytearray()
        while len(received) < len(payload):
            chunk = conn.recv(1 << 20)
            if not chunk:
                break
            received += chunk
        sender.join()
        return bytes(received)


# ------------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpu-box", SshTarget("gpu-box")),
        ("alice@gpu-box", SshTarget("gpu-box", "alice")),
        ("alice@gpu-box:2222", SshTarget("gpu-box", "alice", 2222)),
        ("ssh://alice@gpu-box:2222", SshTarget("gpu-box", "alice", 2222)),
        ("alice@[::1]:2222", SshTarget("::1", "alice", 2222)),
        ("fe80::1", SshTarget("fe80::1")),
        ("a.b@example.org", SshTarget("example.org", "a.b")),
    ],
)
def test_parse_ssh_target(text: str, expected: SshTarget) -> None:
    assert parse_ssh_target(text) == expected


@pytest.mark.parametrize("text", ["", "-oProxyCommand=touch /tmp/x", "alice@", "@host", "host:0", "host:http",
                                  "alice@host:99999", "a b@host", "[::1"])
def test_parse_ssh_target_refuses_nonsense_and_options(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ssh_target(text)


def test_parse_remote_address() -> None:
    assert parse_remote_address("tcp://127.0.0.1:5555") == ("127.0.0.1", 5555)
    assert parse_remote_address("tcp://*:6000") == ("127.0.0.1", 6000)
    assert parse_remote_address("tcp://[::1]:6000") == ("::1", 6000)
    assert forward_spec(4000, "::1", 6000) == "127.0.0.1:4000:[::1]:6000"
    for bad in ("ipc:///tmp/sock", "tcp://127.0.0.1", "127.0.0.1:5555"):
        with pytest.raises(ValueError):
            parse_remote_address(bad)


# ---------------------------------------------------------------------------------------- forwarding


def test_forwards_tcp_through_real_sshd(sshd: SshServer, tunnel_options: dict[str, Any],
                                         echo_server: EchoServer) -> None:
    with SshTunnel(sshd.ssh_target, echo_server.address, **tunnel_options) as tunnel:
        assert tunnel.local_address == f"tcp://127.0.0.1:{tunnel.local_port}"
        assert tunnel.local_port != echo_server.port
        for index in range(3):
            message = f"hello {index}".encode()
            assert echo_roundtrip(tunnel.local_port, message) == message
        big = os.urandom(8 << 20)
        assert echo_roundtrip(tunnel.local_port, big) == big
    # The probe connection plus the four above all reached the echo server through sshd.
    assert echo_server.connections >= 5
    assert "Accepted publickey" in sshd.log()


def test_forwards_zeromq_through_real_sshd(sshd: SshServer, tunnel_options: dict[str, Any]) -> None:
    context = zmq.Context.instance()
    server = context.socket(zmq.ROUTER)
    server.linger = 0
    port = server.bind_to_random_port("tcp://127.0.0.1")
    client = context.socket(zmq.DEALER)
    client.linger = 0
    try:
        with SshTunnel(sshd.ssh_target, f"tcp://127.0.0.1:{port}", **tunnel_options) as tunnel:
            client.connect(tunnel.local_address)
            array_bytes = os.urandom(16 << 20)  # a large binary frame, as an array result travels
            client.send_multipart([b"request-1", array_bytes])
            assert server.poll(DEADLINE_S * 1000), "the request never arrived through the tunnel"
            identity, request_id, body = server.recv_multipart()
            assert (request_id, body) == (b"request-1", array_bytes)
            for step in range(5):  # streamed events for one request
                server.send_multipart([identity, request_id, f"token {step}".encode()])
            server.send_multipart([identity, request_id, body[::-1]])
            replies = []
            for _ in range(6):
                assert client.poll(DEADLINE_S * 1000), "a reply never came back through the tunnel"
                replies.append(client.recv_multipart())
            assert [r[1] for r in replies[:5]] == [f"token {s}".encode() for s in range(5)]
            assert replies[5] == [b"request-1", array_bytes[::-1]]
    finally:
        client.close()
        server.close()


def test_tunnel_opened_from_short_lived_thread_survives_it(sshd: SshServer, tunnel_options: dict[str, Any],
                                                           echo_server: EchoServer) -> None:
    """The parent-death signal is tied to the forking thread; the spawner thread keeps it process-wide."""
    made: list[SshTunnel] = []
    worker = threading.Thread(target=lambda: made.append(SshTunnel(sshd.ssh_target, echo_server.address,
                                                                   **tunnel_options)))
    worker.start()
    worker.join()
    (tunnel,) = made
    with tunnel:
        assert tunnel.alive
        assert echo_roundtrip(tunnel.local_port, b"still here") == b"still here"


def test_explicit_local_port_is_used(sshd: SshServer, tunnel_options: dict[str, Any],
                                     echo_server: EchoServer) -> None:
    with socket.socket() as picker:
        picker.bind(("127.0.0.1", 0))
        wanted = picker.getsockname()[1]
    with SshTunnel(sshd.ssh_target, echo_server.address, local_port=wanted, **tunnel_options) as tunnel:
        assert tunnel.local_address == f"tcp://127.0.0.1:{wanted}"
        assert echo_roundtrip(wanted, b"x") == b"x"


# ------------------------------------------------------------------------------------------- closing


def test_close_stops_child_and_frees_port(sshd: SshServer, tunnel_options: dict[str, Any],
                                          echo_server: EchoServer) -> None:
    tunnel = SshTunnel(sshd.ssh_target, echo_server.address, **tunnel_options)
    pid, port = tunnel.pid, tunnel.local_port
    assert pid is not None and pid_running(pid)
    assert not port_is_free(port)
    tunnel.close()
    assert not pid_running(pid)
    assert port_is_free(port)
    assert not tunnel.alive
    tunnel.close()  # twice is fine
    with pytest.raises(SshTunnelError, match="closed"):
        tunnel.check()


def test_check_reports_a_dead_child(sshd: SshServer, tunnel_options: dict[str, Any],
                                    echo_server: EchoServer) -> None:
    with SshTunnel(sshd.ssh_target, echo_server.address, **tunnel_options) as tunnel:
        tunnel.check()
        assert tunnel.pid is not None
        os.kill(tunnel.pid, signal.SIGKILL)
        wait_until(lambda: not tunnel.alive, "the ssh child to die")
        with pytest.raises(SshTunnelError, match="stopped"):
            tunnel.check()


def test_a_killed_child_is_announced_and_reopened_on_the_same_port(sshd: SshServer, tunnel_options: dict[str, Any],
                                                                    echo_server: EchoServer) -> None:
    exited = threading.Event()
    with SshTunnel(sshd.ssh_target, echo_server.address, **tunnel_options) as tunnel:
        tunnel.add_exit_listener(exited.set)
        old_pid, port = tunnel.pid, tunnel.local_port
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        assert exited.wait(DEADLINE_S), "the exit listener was not called"
        assert not tunnel.alive
        tunnel.reopen()
        assert tunnel.alive and tunnel.pid != old_pid and not pid_running(old_pid)
        assert tunnel.local_port == port
        assert echo_roundtrip(port, b"back again") == b"back again"


def test_reopen_moves_to_a_free_port_when_its_own_is_taken(sshd: SshServer, tunnel_options: dict[str, Any],
                                                           echo_server: EchoServer) -> None:
    with SshTunnel(sshd.ssh_target, echo_server.address, **tunnel_options) as tunnel:
        port = tunnel.local_port
        assert tunnel.pid is not None
        os.kill(tunnel.pid, signal.SIGKILL)
        wait_until(lambda: not tunnel.alive and port_is_free(port), "the ssh child to die")
        with socket.create_server(("127.0.0.1", port)):  # someone else took the port meanwhile
            tunnel.reopen()
            assert tunnel.alive and tunnel.local_port != port
            assert echo_roundtrip(tunnel.local_port, b"moved") == b"moved"


CHILD_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from ecco_client.ssh_tunnel import SshTunnel
    target, address, identity, *options = sys.argv[1:]
    tunnel = SshTunnel(target, address, identity_file=identity, ssh_options=options, config_file=os.devnull)
    print(tunnel.pid, tunnel.local_port, flush=True)
    sys.stdin.readline()  # the test checks the child first, then lets us go on
    if os.environ["HOW"] == "exit":
        sys.exit(0)  # no close(): the interpreter's exit must stop the child
    time.sleep(600)  # killed from outside with SIGKILL: no Python cleanup at all
    """
)


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_child_stops_when_parent_goes(how: str, sshd: SshServer, echo_server: EchoServer) -> None:
    if how == "sigkill" and not sys.platform.startswith("linux"):
        pytest.fail("the parent-death signal is Linux-only; this tier runs on Linux")
    env = dict(os.environ, PYTHONPATH=str(CLIENT_SRC), HOW=how)
    parent = subprocess.Popen(
        [sys.executable, "-c", CHILD_SCRIPT, sshd.ssh_target, echo_server.address, str(sshd.identity_file),
         *sshd.ssh_options],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line, f"the parent printed nothing: {parent.stderr.read() if parent.stderr else ''}"
        pid, port = (int(part) for part in line.split())
        assert pid_running(pid)
        assert parent.stdin is not None
        parent.stdin.write("go\n")
        parent.stdin.flush()
        if how == "sigkill":
            parent.send_signal(signal.SIGKILL)
        assert parent.wait(timeout=DEADLINE_S) in (0, -signal.SIGKILL)
        wait_until(lambda: not pid_running(pid), f"ssh child {pid} to stop after its parent's {how}")
        wait_until(lambda: port_is_free(port), f"local port {port} to be freed")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


# -------------------------------------------------------------------------------------------- errors


def test_unknown_host_key_is_refused(sshd: SshServer, tmp_path: Path, echo_server: EchoServer) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    options = (f"UserKnownHostsFile={empty}", "GlobalKnownHostsFile=/dev/null", "StrictHostKeyChecking=yes")
    with pytest.raises(SshHostKeyError, match="host key") as caught:
        SshTunnel(sshd.ssh_target, echo_server.address, identity_file=sshd.identity_file,
                  ssh_options=options, config_file=os.devnull)
    assert "Host key verification failed" in caught.value.stderr


def test_changed_host_key_is_refused(sshd: SshServer, tmp_path: Path, echo_server: EchoServer) -> None:
    impostor = make_key(tmp_path / "impostor", "impostor")
    public = " ".join(impostor.with_suffix(".pub").read_text().split()[:2])
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {public}\n")
    options = (f"UserKnownHostsFile={known}", "GlobalKnownHostsFile=/dev/null", "StrictHostKeyChecking=yes")
    with pytest.raises(SshHostKeyError) as caught:
        SshTunnel(sshd.ssh_target, echo_server.address, identity_file=sshd.identity_file,
                  ssh_options=options, config_file=os.devnull)
    assert "IDENTIFICATION HAS CHANGED" in caught.value.stderr


def test_unauthorized_key_is_refused(sshd: SshServer, tmp_path: Path, echo_server: EchoServer) -> None:
    stranger = make_key(tmp_path / "stranger", "stranger")
    with pytest.raises(SshAuthError, match="could not log in") as caught:
        SshTunnel(sshd.ssh_target, echo_server.address, identity_file=stranger,
                  ssh_options=sshd.ssh_options, config_file=os.devnull)
    assert "Permission denied" in caught.value.stderr


def test_unreachable_ssh_server(sshd: SshServer, echo_server: EchoServer) -> None:
    with socket.socket() as held:  # bound, not listening: connections are refused, and nobody takes it
        held.bind(("127.0.0.1", 0))
        dead_port = held.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(SshConnectError, match="could not reach") as caught:
            SshTunnel(f"{sshd.user}@127.0.0.1:{dead_port}", echo_server.address,
                      identity_file=sshd.identity_file, ssh_options=sshd.ssh_options, config_file=os.devnull)
        assert time.monotonic() - started < 5, "a refused connection must fail fast, not at the deadline"
    assert "Connection refused" in caught.value.stderr


def test_nothing_listening_on_the_remote_side(sshd: SshServer, tunnel_options: dict[str, Any]) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        dead_port = held.getsockname()[1]
        with pytest.raises(RemoteTargetRefused, match="is the daemon running") as caught:
            SshTunnel(sshd.ssh_target, f"tcp://127.0.0.1:{dead_port}", **tunnel_options)
    assert "open failed" in caught.value.stderr
    # Without the check the tunnel opens: ZeroMQ clients retry until the daemon comes up.
    with SshTunnel(sshd.ssh_target, f"tcp://127.0.0.1:{dead_port}", check_remote=False,
                   **tunnel_options) as tunnel:
        assert tunnel.alive


def test_server_without_tcp_forwarding(sshd_without_forwarding: SshServer, echo_server: EchoServer) -> None:
    server = sshd_without_forwarding
    with pytest.raises(ForwardingProhibited, match="does not allow TCP forwarding") as caught:
        SshTunnel(server.ssh_target, echo_server.address, identity_file=server.identity_file,
                  ssh_options=server.ssh_options, config_file=os.devnull)
    assert "administratively prohibited" in caught.value.stderr
    assert echo_server.connections == 0


def test_busy_local_port_is_reported(sshd: SshServer, tunnel_options: dict[str, Any],
                                     echo_server: EchoServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        busy = squatter.getsockname()[1]
        with pytest.raises(SshForwardError, match=str(busy)):
            SshTunnel(sshd.ssh_target, echo_server.address, local_port=busy, **tunnel_options)


def test_missing_ssh_program_is_reported(echo_server: EchoServer) -> None:
    with pytest.raises(SshTunnelError, match="no 'ssh-that-does-not-exist' program"):
        SshTunnel("localhost", echo_server.address, ssh_executable="ssh-that-does-not-exist")


def test_required_options_win_over_callers() -> None:
    tunnel = SshTunnel.__new__(SshTunnel)  # only to build the command line; nothing is started
    tunnel.target = parse_ssh_target("alice@gpu:2222")
    tunnel.remote_host, tunnel.remote_port = "127.0.0.1", 5555
    tunnel.identity_file, tunnel.config_file, tunnel.timeout = "/k", None, 7.5
    tunnel.ssh_options = ("BatchMode=no", "ServerAliveInterval=5")
    tunnel.ssh_executable = "/usr/bin/ssh"
    args = tunnel.command(4000)
    options = [args[i + 1] for i, arg in enumerate(args) if arg == "-o"]
    # ssh keeps the first value of each option.
    assert options.index("BatchMode=yes") < options.index("BatchMode=no")
    assert options.index("ServerAliveInterval=5") < options.index("ServerAliveInterval=15")
    assert "ConnectTimeout=8" in options
    assert args[-4:] == ["-L", "127.0.0.1:4000:127.0.0.1:5555", "--", "alice@gpu"]
    assert args[args.index("-p") + 1] == "2222" and args[args.index("-i") + 1] == "/k"
