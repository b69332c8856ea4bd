"""What handlers and the executor share: models, results, the queue, users, the in-flight map and settings.

Why one object: handlers receive it as an argument (a job carries only its own request), so a handler's
needs are visible in its signature and tests can build a context with only the parts they use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ecco_daemon.server.inflight import InflightRequests
from ecco_daemon.server.peers import PeerClock
from ecco_daemon.server.reply_journal import ReplyJournal

if TYPE_CHECKING:
    from ecco_daemon.config import DaemonConfig
    from ecco_daemon.runtime.model_registry import ModelRegistry
    from ecco_daemon.runtime.scheduler import Scheduler
    from ecco_daemon.runtime.store import ResultStore
    from ecco_daemon.server.users import UserStore


@dataclass
class RuntimeContext:
    config: DaemonConfig
    models: ModelRegistry
    store: ResultStore
    scheduler: Scheduler
    users: UserStore
    inflight: InflightRequests = field(default_factory=InflightRequests)
    replies: ReplyJournal = field(default_factory=ReplyJournal)
    peers: PeerClock = field(default_factory=PeerClock)
    started: float = field(default_factory=time.time)
    shutdown_requested: threading.Event = field(default_factory=threading.Event)
    # Messages refused before reaching a handler, by error code (UNAUTHORIZED, BAD_FRAME, TOO_LARGE...).
    refusals: dict[str, int] = field(default_factory=dict)
    # Where work runs (the executor's describe(): worker threads or model replicas), for the admin's status.
    describe_executor: Callable[[], list[dict[str, Any]]] = field(default=lambda: [])

    def release_device_memory(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
