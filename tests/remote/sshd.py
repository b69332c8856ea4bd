"""A real, throwaway OpenSSH server on a loopback port, for the remote tier.

Everything it needs lives in one temporary folder: a fresh host key, a fresh client key that is the only
authorized key, a known_hosts file that pins the host key, and an sshd_config that allows public-key login
and TCP forwarding and nothing else. CI needs Debian's ``openssh-server`` and ``openssh-client`` packages;
``ensure_openssh`` installs them with apt-get when it may (root, apt present) and fails clearly otherwise.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
START_TIMEOUT_S = 15.0
BIND_RETRIES = 3


class SshdUnavailable(RuntimeError):
    """OpenSSH is missing and could not be installed here."""


def ensure_openssh() -> None:
    """Install openssh-server/client with apt when they are missing; CI images should pre-install them."""
    if Path(SSHD).exists() and shutil.which("ssh") and shutil.which("ssh-keygen"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SshdUnavailable(
            "the remote tests need OpenSSH: apt-get install openssh-server openssh-client"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "openssh-server", "openssh-client"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SshdUnavailable(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    if not Path(SSHD).exists():
        raise SshdUnavailable(f"{SSHD} is still missing after installing openssh-server")


def free_port() -> int:
    """A port the OS has just handed out; the caller must cope with losing it (see start_sshd's retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_key(path: Path, comment: str) -> Path:
    """An unencrypted ed25519 key pair at path and path.pub."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True, capture_output=True, timeout=30,
    )
    return path


@dataclass
class SshServer:
    """A running sshd; ``ssh_target`` and ``ssh_options`` are what a client needs to log in."""

    host: str
    port: int
    user: str
    identity_file: Path
    known_hosts_file: Path
    host_key: Path
    folder: Path
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def ssh_target(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    @property
    def ssh_options(self) -> tuple[str, ...]:
        """Pin this server's host key and ignore the user's own known_hosts."""
        return (
            f"UserKnownHostsFile={self.known_hosts_file}",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
        )

    def write_client_config(self, path: Path, alias: str) -> Path:
        """An ssh_config where ``alias`` logs in here: what a user puts in ~/.ssh/config for a GPU host."""
        path.write_text(
            f"Host {alias}\n"
            f"    HostName {self.host}\n"
            f"    Port {self.port}\n"
            f"    User {self.user}\n"
            f"    IdentityFile {self.identity_file}\n"
            f"    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {self.known_hosts_file}\n"
            f"    GlobalKnownHostsFile /dev/null\n"
            f"    StrictHostKeyChecking yes\n"
        )
        return path

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def write_config(folder: Path, port: int, host_key: Path, authorized_keys: Path, forwarding: bool) -> Path:
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized_keys}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "StrictModes no",
                "UsePAM no",
                f"PidFile {folder / 'sshd.pid'}",
                f"AllowTcpForwarding {'yes' if forwarding else 'no'}",
                "PermitRootLogin prohibit-password",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    return config


def wait_for_banner(process: subprocess.Popen[bytes], port: int, deadline: float) -> bool:
    """Poll until sshd greets with its SSH banner; False when the process exits first."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
                conn.settimeout(max(0.1, deadline - time.monotonic()))
                if conn.recv(8).startswith(b"SSH-"):
                    return True
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"sshd on port {port} did not greet within {START_TIMEOUT_S}s")


def start_sshd(folder: Path, *, forwarding: bool = True) -> SshServer:
    """Generate keys and config in folder and start sshd in the foreground on a free loopback port.

    ``forwarding=False`` gives a locked-down server (``AllowTcpForwarding no``), as some hosts are.
    """
    ensure_openssh()
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    host_key = make_key(folder / "host_ed25519", "ecco-test-host")
    identity = make_key(folder / "client_ed25519", "ecco-test-client")
    authorized = folder / "authorized_keys"
    authorized.write_text((identity.with_suffix(".pub")).read_text())
    log_file = folder / "sshd.log"
    for _ in range(BIND_RETRIES):
        port = free_port()
        config = write_config(folder, port, host_key, authorized, forwarding)
        with log_file.open("ab") as log:
            process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        if wait_for_banner(process, port, time.monotonic() + START_TIMEOUT_S):
            break
        # It exited: most likely another process took the port between free_port() and sshd's bind.
    else:
        raise RuntimeError(f"sshd did not start; its log:\n{log_file.read_text(errors='replace')}")
    public_host_key = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {public_host_key}\n")
    return SshServer(
        host="127.0.0.1", port=port, user=getpass.getuser(), identity_file=identity,
        known_hosts_file=known_hosts, host_key=host_key, folder=folder, process=process, log_file=log_file,
    )
