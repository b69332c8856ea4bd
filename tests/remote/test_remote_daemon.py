"""The real daemon (tiny Llama, loopback only) reached through a real sshd and ssh -L: by the Python client,
blocking and asyncio, and by the language server as VS Code starts it (``ecco.sshHost``). One module, so
all share one daemon."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
import torch
from pytest_lsp import ClientServerConfig

import ecco_client
import ecco_client.aio
from ecco_client.ssh_tunnel import RemoteTargetRefused, SshAuthError, SshConnectError, SshTunnel
from tests.daemon_process import DaemonProcess
from tests.lsp.lsp_session import SERVER_COMMAND, SERVER_ENV, Session

from .sshd import SshServer, start_sshd
from .test_ssh_tunnel import pid_running, port_is_free, wait_until

PROMPT = "Transformers use attention"
WIDE_NEURONS, WIDE_LAYERS, WIDE_TOKENS, WIDE_FACTORS = 16384, 4, 12, 4
# Long enough that the tunnel is cut while tokens still stream, even when a loaded host runs the
# callback late (a generation that already arrived whole rightly succeeds).
LONG_GENERATION = 1000


def tunnel_of(client: Any) -> SshTunnel:
    tunnel = client.tunnel  # the client owns it; the test only looks
    assert isinstance(tunnel, SshTunnel)
    return tunnel


def connect_through_ssh(daemon: DaemonProcess, sshd: SshServer, tunnel_options: dict[str, Any],
                        **kwargs: Any) -> ecco_client.Client:
    info = daemon.info
    return ecco_client.connect(address=info.address, key=info.key, user=info.user, ssh=sshd.ssh_target,
                               ssh_options=tunnel_options, timeout=20, **kwargs)


def test_streaming_generation_through_the_tunnel(daemon: DaemonProcess, sshd: SshServer,
                                                 tunnel_options: dict[str, Any]) -> None:
    with connect_through_ssh(daemon, sshd, tunnel_options) as client:
        tunnel = tunnel_of(client)
        assert client.address == tunnel.local_address != daemon.info.address
        assert tunnel.remote_port == int(daemon.info.address.rsplit(":", 1)[1])
        streamed: list[dict[str, Any]] = []
        out = client.model().generate(PROMPT, generate=12, alternatives=5, on_token=streamed.append)
        generated = out.token_ids[out.n_input_tokens:].tolist()
        assert 1 <= len(generated) <= 12
        assert [event["token_id"] for event in streamed] == generated
        assert [event["position"] for event in streamed] == list(range(out.n_input_tokens, len(out.token_ids)))
        assert out.probabilities.shape == (len(generated),)
    # The same request straight to the daemon gives the same greedy tokens: the tunnel changes nothing.
    with ecco_client.connect(connection_file=daemon.connection_file, timeout=20) as direct:
        assert direct.model().generate(PROMPT, generate=12, alternatives=5).token_ids.tolist() == \
            out.token_ids.tolist()
    assert "Accepted publickey" in sshd.log()


@pytest.fixture(scope="module")
def wide_llama(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama with wide MLPs (4 x 16384 neurons per token), so activation results weigh a megabyte or more."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    dest = tmp_path_factory.mktemp("wide-llama")
    config = LlamaConfig.from_pretrained(tiny_llama)
    config.intermediate_size, config.num_hidden_layers = WIDE_NEURONS, WIDE_LAYERS
    torch.manual_seed(0)
    LlamaForCausalLM(config).eval().save_pretrained(dest)
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(dest)
    return dest


def test_a_megabyte_of_activation_factors_through_the_tunnel(daemon: DaemonProcess, sshd: SshServer,
                                                     tunnel_options: dict[str, Any], wide_llama: Path) -> None:
    """NMF components of every MLP neuron (a float32 array of a megabyte) arrive whole and equal to the
    same view fetched straight from the daemon."""
    with connect_through_ssh(daemon, sshd, tunnel_options) as client:
        client.load_model(str(wide_llama), name="wide-llama")
        out = client.model("wide-llama").analyze(list(range(3, 3 + WIDE_TOKENS)), activations=True)
        params = {"result_id": out.result_id, "view": "nmf",
                  "params": {"n_components": WIDE_FACTORS, "components": True}}
        started = time.monotonic()
        through_tunnel = client.call("view", params)["data"]
        seconds = time.monotonic() - started
    components = through_tunnel["components"]
    assert components.dtype.name == "float32"
    assert components.shape == (WIDE_FACTORS, WIDE_LAYERS * WIDE_NEURONS)
    assert components.nbytes >= 2**20, f"only {components.nbytes} bytes"
    assert np.isfinite(components).all() and (components >= 0).all() and components.any()
    with ecco_client.connect(connection_file=daemon.connection_file, timeout=20) as direct:
        straight = direct.call("view", params)["data"]
    np.testing.assert_array_equal(components, straight["components"])
    np.testing.assert_array_equal(through_tunnel["factors"], straight["factors"])
    print(f"{components.nbytes / 2**20:.1f} MiB of NMF components through the tunnel in {seconds:.2f}s")


def test_generation_arrays_through_the_tunnel(daemon: DaemonProcess, sshd: SshServer,
                                              tunnel_options: dict[str, Any]) -> None:
    """Every step with its 100 most likely alternatives, as binary arrays."""
    with connect_through_ssh(daemon, sshd, tunnel_options) as client:
        lm = client.model()
        out = lm.generate(list(range(3, 11)), generate=100, alternatives=100)
        steps = len(out.token_ids) - out.n_input_tokens
        assert out.alternatives["ids"].shape == (steps, 100)
        assert out.alternatives["probs"].dtype.name == "float32"
        # Alternatives come sorted, the chosen (greedy) token first, and each row is a piece of a distribution.
        assert (out.alternatives["ids"][:, 0] == out.token_ids[out.n_input_tokens:]).all()
        assert (out.alternatives["probs"][:, :-1] >= out.alternatives["probs"][:, 1:]).all()
        assert (out.alternatives["probs"].sum(axis=1) <= 1.0 + 1e-5).all()


async def test_async_client_streams_through_the_tunnel(daemon: DaemonProcess, sshd: SshServer,
                                                       tunnel_options: dict[str, Any]) -> None:
    info = daemon.info
    client = await ecco_client.aio.connect(address=info.address, key=info.key, user=info.user,
                                           ssh=sshd.ssh_target, ssh_options=tunnel_options, timeout=20)
    tunnel = client._tunnel
    try:
        assert client.address == tunnel.local_address
        tokens = [event async for event in ecco_client.AsyncLanguageModel(client, None).stream(PROMPT, generate=6)]
        assert 1 <= len(tokens) <= 6
        assert all(0.0 <= event["prob"] <= 1.0 for event in tokens)
    finally:
        await client.close()
    assert not tunnel.alive


def test_closing_the_client_closes_the_tunnel(daemon: DaemonProcess, sshd: SshServer,
                                              tunnel_options: dict[str, Any]) -> None:
    client = connect_through_ssh(daemon, sshd, tunnel_options)
    tunnel = tunnel_of(client)
    pid, port = tunnel.pid, tunnel.local_port
    assert pid is not None and pid_running(pid)
    assert client.ping() < 5.0
    client.close()
    assert not pid_running(pid)
    assert port_is_free(port)


def test_a_dying_tunnel_fails_the_request_instead_of_hanging(daemon: DaemonProcess, sshd: SshServer,
                                                             tunnel_options: dict[str, Any]) -> None:
    with connect_through_ssh(daemon, sshd, tunnel_options) as client:
        tunnel = tunnel_of(client)
        assert tunnel.pid is not None

        def cut_the_tunnel(_event: dict[str, Any]) -> None:
            if tunnel.alive:
                os.kill(tunnel.pid, signal.SIGKILL)

        started = time.monotonic()
        with pytest.raises(ecco_client.DaemonUnavailable):
            client.model().generate(PROMPT, generate=LONG_GENERATION, on_token=cut_the_tunnel)
        assert time.monotonic() - started < 20 + 5, "the request outlived the client's timeout"
    # The daemon itself is unharmed and still serves direct clients.
    with ecco_client.connect(connection_file=daemon.connection_file, timeout=20) as direct:
        assert direct.ping() < 5.0


def test_a_killed_tunnel_is_reopened_and_the_next_request_succeeds(daemon: DaemonProcess, sshd: SshServer,
                                                                   tunnel_options: dict[str, Any]) -> None:
    with connect_through_ssh(daemon, sshd, tunnel_options) as client:
        tunnel = tunnel_of(client)
        old_pid, address = tunnel.pid, client.address
        assert old_pid is not None
        logins = sshd.log().count("Accepted publickey")

        def cut_the_tunnel(_event: dict[str, Any]) -> None:
            if tunnel.pid == old_pid and tunnel.alive:
                os.kill(old_pid, signal.SIGKILL)

        started = time.monotonic()
        with pytest.raises(ecco_client.DaemonUnavailable, match="SSH tunnel"):
            client.model().generate(PROMPT, generate=LONG_GENERATION, on_token=cut_the_tunnel)
        assert time.monotonic() - started < 10, "the request in flight did not fail at once"
        # The same client, with nothing done by the caller: the request waits for the reopened tunnel.
        out = client.model().generate(PROMPT, generate=3)
        assert len(out.token_ids) > out.n_input_tokens
        assert client.ping() < 5.0
        assert tunnel_of(client) is tunnel and tunnel.alive and tunnel.pid != old_pid
        assert not pid_running(old_pid)
        assert client.address == address, "the tunnel should come back on its old local port"
        assert sshd.log().count("Accepted publickey") == logins + 1


@contextmanager
def client_through_own_sshd(daemon: DaemonProcess, tmp_path: Path, timeout: float) -> Iterator[tuple[SshServer, Any]]:
    """An sshd of this test's own (to stop or reconfigure under the client) and a client tunnelled through it."""
    server = start_sshd(tmp_path / "sshd")
    options = {"identity_file": server.identity_file, "ssh_options": server.ssh_options, "config_file": os.devnull}
    try:
        info = daemon.info
        client = ecco_client.connect(address=info.address, key=info.key, user=info.user, ssh=server.ssh_target,
                                     ssh_options=options, timeout=timeout)
        try:
            yield server, client
        finally:
            client.close()
    finally:
        server.stop()


def test_an_unreopenable_tunnel_fails_requests_with_ssh_words(daemon: DaemonProcess, tmp_path: Path) -> None:
    """An sshd of its own, stopped under the client: requests fail within the timeout, naming ssh's error."""
    with client_through_own_sshd(daemon, tmp_path, timeout=3) as (server, client):
        tunnel = tunnel_of(client)
        assert client.ping() < 3.0
        try:
            server.stop()
            if tunnel.alive:  # stopping sshd may or may not end the sessions it started
                os.kill(tunnel.pid, signal.SIGKILL)
            wait_until(lambda: not client.tunnel_up, "the client to notice the dead tunnel")
            for _ in range(2):  # every later request fails the same way, none hangs
                started = time.monotonic()
                with pytest.raises(SshConnectError, match="Connection refused") as caught:
                    client.ping()
                assert time.monotonic() - started < 3 + 2
                assert isinstance(caught.value, ecco_client.DaemonUnavailable)
                assert "was not reopened within 3s" in str(caught.value)
                assert "ssh said" in str(caught.value) and "Connection refused" in caught.value.stderr
        finally:
            started = time.monotonic()
            client.close()
            assert time.monotonic() - started < 5


def test_a_refused_key_stops_the_reopening_and_fails_requests_at_once(daemon: DaemonProcess,
                                                                       tmp_path: Path) -> None:
    """The key is no longer accepted when the tunnel drops: one attempt, then no more logins tried (a server
    counting failures is not hammered), and every request fails at once with ssh's words."""
    with client_through_own_sshd(daemon, tmp_path, timeout=20) as (server, client):
        tunnel = tunnel_of(client)
        assert client.ping() < 5.0
        (server.folder / "authorized_keys").write_text("")  # the admin revoked the key
        os.kill(tunnel.pid, signal.SIGKILL)
        wait_until(lambda: not client.tunnel_up, "the client to notice the dead tunnel")
        started = time.monotonic()
        with pytest.raises(SshAuthError, match="will not be reopened") as caught:
            client.ping()  # waits for the one attempt, not for the 20 s timeout
        assert time.monotonic() - started < 10
        assert "Permission denied" in caught.value.stderr
        refusals = server.log().count("Connection closed by authenticating user")
        assert refusals >= 1
        time.sleep(4)  # retries would have come at about 1, 2 and 4 s
        started = time.monotonic()
        with pytest.raises(SshAuthError, match="will not be reopened"):
            client.ping()
        assert time.monotonic() - started < 1, "a request after the refusal fails at once"
        assert server.log().count("Connection closed by authenticating user") == refusals
        assert not client.tunnel_up


def test_no_daemon_behind_the_tunnel_is_a_clear_error(daemon: DaemonProcess, sshd: SshServer,
                                                      tunnel_options: dict[str, Any]) -> None:
    with socket.socket() as held:  # a port on the SSH host where nothing listens
        held.bind(("127.0.0.1", 0))
        info = daemon.info
        with pytest.raises(RemoteTargetRefused, match="is the daemon running") as caught:
            ecco_client.connect(address=f"tcp://127.0.0.1:{held.getsockname()[1]}", key=info.key,
                                ssh=sshd.ssh_target, ssh_options=tunnel_options, timeout=5)
    assert isinstance(caught.value, ecco_client.DaemonUnavailable)


def test_tunnel_and_client_survive_many_requests(daemon: DaemonProcess, sshd: SshServer,
                                                 tunnel_options: dict[str, Any]) -> None:
    """Several requests in flight at once over one tunnelled connection, each answered to its own id."""
    with connect_through_ssh(daemon, sshd, tunnel_options) as client:
        prompts = [list(range(3 + i, 9 + i)) for i in range(6)]
        handles = [client.request("generate", {"input_ids": p, "generate": 5, "alternatives": 3})
                   for p in prompts]
        for prompt, handle in zip(prompts, handles, strict=True):
            result = handle.result()
            assert result["token_ids"][: len(prompt)].tolist() == prompt
        wait_until(lambda: tunnel_of(client).alive, "the tunnel to stay up")



def test_the_tunnel_does_not_replace_the_key(daemon: DaemonProcess, sshd: SshServer,
                                             tunnel_options: dict[str, Any]) -> None:
    """SSH gets you to the port; the daemon still refuses messages signed with the wrong key."""
    info = daemon.info
    with pytest.raises(ecco_client.Unauthorized):
        ecco_client.connect(address=info.address, key="not-the-key", user=info.user, ssh=sshd.ssh_target,
                            ssh_options=tunnel_options, timeout=10)


# ------------------------------------------------------------------- the language server (ecco.sshHost)

HOST_ALIAS = "ecco-gpu-box"


def ssh_children_using(config: Path) -> list[int]:
    """Pids of live ssh processes started with this (test-unique) config file."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"ssh") and str(config).encode() in argv and pid_running(int(entry.name)):
            pids.append(int(entry.name))
    return pids


@pytest_asyncio.fixture
async def ssh_config(sshd: SshServer, tmp_path: Path) -> Path:
    return sshd.write_client_config(tmp_path / "ssh_config", HOST_ALIAS)


def settings_through_ssh(daemon: DaemonProcess, model: Path) -> dict[str, Any]:
    """VS Code's settings for the daemon's copied connection file and a host alias from the ssh config."""
    return {"connectionFile": str(daemon.connection_file), "sshHost": HOST_ALIAS, "model": str(model),
            "generateTokens": 0}


@pytest_asyncio.fixture
async def server_through_ssh(ssh_config: Path) -> AsyncIterator[Session]:
    """The real pygls server over stdio; its tunnels read the test's ssh config via $ECCO_SSH_CONFIG."""
    config = ClientServerConfig(server_command=SERVER_COMMAND,
                                server_env={**SERVER_ENV, "ECCO_SSH_CONFIG": str(ssh_config)})
    client = await config.start()
    session = Session(client)
    yield session
    await client.stop()


async def test_language_server_reaches_the_daemon_through_ssh(server_through_ssh: Session, daemon: DaemonProcess,
                                                              tiny_llama: Path, ssh_config: Path,
                                                              sshd: SshServer, tmp_path: Path) -> None:
    session = server_through_ssh
    accepted_before = sshd.log().count("Accepted publickey")
    await session.initialize(settings_through_ssh(daemon, tiny_llama), tmp_path)
    status = await session.wait_for("a connected status", lambda: next(
        (s for s in session.statuses if s["connected"]), None))
    # The server talks to the local end of its tunnel, not to the daemon's own address.
    assert status["address"].startswith("tcp://127.0.0.1:")
    assert status["address"] != daemon.info.address
    (tunnel_pid,) = ssh_children_using(ssh_config)
    assert sshd.log().count("Accepted publickey") == accepted_before + 1
    await session.client.shutdown_session()
    await session.wait_for("the tunnel to close with the server", lambda: not pid_running(tunnel_pid))


async def test_language_server_reports_the_tunnel_down_and_back_up(server_through_ssh: Session, daemon: DaemonProcess,
                                                                  tiny_llama: Path, ssh_config: Path,
                                                                  tmp_path: Path, capfd: pytest.CaptureFixture[str]
                                                                  ) -> None:
    """Its own client reopens the tunnel; the status bar and the log say so, as for a daemon restart."""
    session = server_through_ssh
    await session.initialize(settings_through_ssh(daemon, tiny_llama), tmp_path)
    try:
        await check_tunnel_down_and_back_up(session, ssh_config, capfd)
    finally:
        await session.client.shutdown_session()


async def check_tunnel_down_and_back_up(session: Session, ssh_config: Path,
                                        capfd: pytest.CaptureFixture[str]) -> None:
    up = await session.wait_for("a connected status", lambda: next(
        (s for s in session.statuses if s["connected"]), None))
    (old_pid,) = ssh_children_using(ssh_config)

    seen = len(session.statuses)
    os.kill(old_pid, signal.SIGKILL)
    down = await session.wait_for("the tunnel reported down", lambda: next(
        (s for s in session.statuses[seen:] if not s["connected"]), None))
    assert "reopening the SSH tunnel" in down["message"] and "ssh exited" in down["message"]
    back = await session.wait_for("the tunnel reported back up", lambda: next(
        (s for s in session.statuses[seen:] if s["connected"]), None))
    assert back["message"] == "reconnected"
    assert back["address"] == up["address"], "the server's own client reopened its tunnel on the same port"
    (new_pid,) = ssh_children_using(ssh_config)
    assert new_pid != old_pid
    warnings = [m.message for m in session.client.messages if "SSH tunnel" in m.message]
    assert len(warnings) == 1, warnings

    logged = ""

    def log_says_reopened() -> bool:
        nonlocal logged
        logged += capfd.readouterr().err
        return "reopened the SSH tunnel" in logged

    await session.wait_for("the server to log the reopened tunnel", log_says_reopened)
    assert "reopening the SSH tunnel" in logged
