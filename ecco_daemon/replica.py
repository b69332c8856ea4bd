"""What a model replica process runs under Ray: every operation's handler, one model, one ReplicaService.

Why at the root: it is composition, like ``daemon.py``. It registers the handlers (which sit above the
runtime) in the replica's process and wraps the runtime's ``ReplicaService`` as a Ray actor's methods.
Only ``serve --ray`` imports it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import ray
import torch

from ecco_daemon import handlers  # noqa: F401  (registers the operations and batch runners here too)
from ecco_daemon.config import DaemonConfig
from ecco_daemon.runtime.replica import ReplicaService
from ecco_daemon.runtime.replica_wire import Reply, Ticket


class ModelReplica:
    """One copy of one model on its own device (Ray gives it its GPUs), driven by the daemon's front door."""

    def __init__(self, config: DaemonConfig, load: dict[str, Any], daemon_version: str, threads: int) -> None:
        torch.set_num_threads(threads)
        context = ray.get_runtime_context()
        self.node = {"node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
                     "gpus": [str(g) for g in ray.get_gpu_ids()]}
        self.service = ReplicaService(config, load, daemon_version,
                                      where=f"{socket.gethostname()} ({self.node['node_ip']})")

    def hello(self) -> dict[str, Any]:
        return {**self.service.hello(), **self.node}

    def admit(self, batch_id: str, batch_key: tuple[Any, ...], tickets: list[Ticket]) -> Reply:
        return self.service.admit(batch_id, batch_key, tickets)

    def step(self, batch_id: str) -> Reply:
        return self.service.step(batch_id)

    def drop(self, batch_id: str) -> None:
        self.service.drop(batch_id)

    def cancel(self, keys: list[tuple[str, str, str]]) -> None:
        self.service.cancel(keys)

    def run(self, ticket: Ticket) -> Iterator[Reply]:
        yield from self.service.run(ticket)
