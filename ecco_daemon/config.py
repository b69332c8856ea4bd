"""The daemon's settings, from the command line; one dataclass so every part reads the same values."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ecco_protocol.connection_file import default_state_dir

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"


@dataclass
class DaemonConfig:
    address: str = DEFAULT_ADDRESS
    models: list[str] = field(default_factory=list)
    device: str | None = None
    dtype: str = "float32"
    # Solo decoding over a static cache with a compiled (CUDA graph) step: "auto" (where CUDA is), "on", "off".
    compile_decode: str = "auto"
    state_dir: Path = field(default_factory=default_state_dir)
    # Limits that keep one request from hurting everyone else.
    max_message_bytes: int = 64 * 1024 * 1024
    max_new_tokens: int = 1024
    max_input_tokens: int = 4096
    max_queued_per_user: int = 64
    job_time_limit_s: float = 600.0
    # Work units (tokens, times attribution steps) of one request, and queued per user (None: no limit).
    max_job_cost: int | None = 1_000_000
    max_queued_cost_per_user: int | None = None
    # Generation requests on one model decoded together, at most this many rows.
    max_batch_size: int = 16
    # Security: CURVE encryption (required beyond loopback), and the models allowed to run their own code.
    curve: bool = False
    trust_remote_code_models: list[str] = field(default_factory=list)
    # The per-user result store.
    result_ttl_s: float = 3600.0
    result_store_bytes: int = 2 * 1024**3
    shutdown_grace_s: float = 5.0
    # Final replies kept for clients that fell behind or reconnected (requests.reply).
    reply_journal_ttl_s: float = 120.0
    reply_journal_bytes: int = 32 * 1024 * 1024
    # Jobs of a client silent (no heartbeat) for this long are cancelled: nobody would read their replies.
    client_grace_s: float = 60.0
    # Model replicas on Ray (docs/scale.md): None runs models in this process. "local" starts a Ray
    # instance on loopback; anything else is the address of a cluster to join.
    ray_address: str | None = None
    replicas: int = 1  # per model
    gpus_per_replica: float = 0.0
    cpus_per_replica: float = 1.0
    ray_num_cpus: int | None = None  # the CPUs a local Ray instance offers (default: this machine's)

    @property
    def users_file(self) -> Path:
        return self.state_dir / "users.json"

    @property
    def results_dir(self) -> Path:
        """Stored results, kept across restarts (PROTOCOL.md §5.4)."""
        return self.state_dir / "results"

    @property
    def connection_file(self) -> Path:
        return self.state_dir / "connection.json"
