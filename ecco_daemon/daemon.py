"""The daemon's composition and its socket loop, which never waits on model work."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import zmq
from ecco_protocol.errors import ErrorCode

from ecco_daemon import handlers  # noqa: F401  (registers the operations)
from ecco_daemon.config import DaemonConfig
from ecco_daemon.runtime.cancellation import cancel_jobs_of_silent_peers
from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.runtime.executor import Executor, make_executor
from ecco_daemon.runtime.model_registry import ModelRegistry
from ecco_daemon.runtime.scheduler import Scheduler
from ecco_daemon.runtime.store import ResultStore
from ecco_daemon.server.curve import client_address, load_or_create_server_keys, make_curve_server, refuse_unsafe_bind
from ecco_daemon.server.engine import ProtocolEngine
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job
from ecco_daemon.server.outbox import Outbox
from ecco_daemon.server.registry import OPERATIONS
from ecco_daemon.server.reply_journal import ReplyJournal
from ecco_daemon.server.users import UserStore, write_user_connection_file

log = logging.getLogger(__name__)
security_log = logging.getLogger("ecco_daemon.security")

POLL_INTERVAL_MS = 100


def announce_position(job: Job, position: int, total: int) -> None:
    job.emit("queued", {"position": position, "queue_length": total})


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.ctx = RuntimeContext(
            config=config,
            # With model replicas (--ray) the front door keeps shape-only copies: tokenizer, config, no weights.
            models=ModelRegistry(device=config.device, dtype=config.dtype, compile_decode=config.compile_decode,
                                 weights=config.ray_address is None),
            store=ResultStore(config.result_ttl_s, config.result_store_bytes, directory=config.results_dir),
            scheduler=Scheduler(config.max_queued_per_user, on_position=announce_position,
                                max_job_cost=config.max_job_cost,
                                max_queued_cost_per_user=config.max_queued_cost_per_user),
            users=UserStore(config.users_file),
            replies=ReplyJournal(config.reply_journal_ttl_s, config.reply_journal_bytes),
        )
        self.context = zmq.Context()
        self.router: zmq.Socket | None = None
        self.outbox: Outbox | None = None
        self.executor: Executor | None = None
        self.bound_address: str | None = None

    def bind(self) -> str:
        self.refuse_unsafe_bind()
        router = self.context.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 1000)
        router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        # ZeroMQ itself disconnects a peer whose frame is over twice the message limit, before we allocate for
        # it; between the limit and twice it, a signed request still gets its TOO_LARGE answer.
        router.setsockopt(zmq.MAXMSGSIZE, 2 * self.config.max_message_bytes)
        server_public_key = None
        if self.config.curve:
            keys = load_or_create_server_keys(self.config.state_dir)
            make_curve_server(router, keys)
            server_public_key = keys.public_key
        router.bind(self.config.address)
        self.router = router
        self.bound_address = router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.ctx.config.address = self.bound_address
        self.outbox = Outbox(self.context, router)
        self.ctx.users.ensure_admin()
        # Every user's connection file names this run's address (and key to the encryption, if any).
        address = client_address(self.bound_address)
        for user in self.ctx.users.all():
            write_user_connection_file(self.config.state_dir, user, address, server_public_key)
        return self.bound_address

    def refuse_unsafe_bind(self) -> None:
        """Beyond loopback, traffic must be encrypted: no CURVE, no start (checked before models load)."""
        refuse_unsafe_bind(self.config.address, self.config.curve)

    def load_models(self) -> None:
        trusted = set(self.config.trust_remote_code_models)
        for spec in self.config.models:
            self.ctx.models.load(spec, trust_remote_code=spec in trusted)

    def serve(self) -> None:
        """Run until SIGINT/SIGTERM or a shutdown request; then answer everything still pending."""
        assert self.router is not None and self.outbox is not None
        stop = self.ctx.shutdown_requested

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("received %s, shutting down", signal.Signals(signum).name)
            stop.set()

        engine = ProtocolEngine(self.ctx, OPERATIONS, self.outbox)
        self.engine = engine
        self.executor = self._make_executor()
        self.ctx.describe_executor = self.executor.describe
        self.executor.start()
        # After the executor: Ray, when it starts, installs handlers of its own that would end us at once.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, on_signal)
            signal.signal(signal.SIGTERM, on_signal)
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.outbox.pull, zmq.POLLIN)
        log.info("serving on %s", self.bound_address)
        print(f"ecco-daemon ready on {self.bound_address}", flush=True)
        next_reap = time.monotonic()
        while not stop.is_set():
            events = dict(poller.poll(POLL_INTERVAL_MS))
            self.outbox.forward_pending()  # also retries what slow readers could not take yet
            if self.router in events:
                self._drain_router(engine)
            self.ctx.scheduler.tick()
            if time.monotonic() >= next_reap:
                cancel_jobs_of_silent_peers(self.ctx, self.config.client_grace_s)
                self.ctx.peers.forget_silent(10 * self.config.client_grace_s)
                next_reap = time.monotonic() + 1.0
        self._shutdown()

    def _make_executor(self) -> Executor:
        """Worker threads here, or model replicas on Ray (imported only then: without --ray, no Ray)."""
        if self.config.ray_address is None:
            return make_executor(self.ctx)
        from ecco_daemon.replica import ModelReplica
        from ecco_daemon.runtime.ray_executor import RayExecutor

        return RayExecutor(self.ctx, ModelReplica)

    def _drain_router(self, engine: ProtocolEngine) -> None:
        assert self.router is not None
        for _ in range(1000):  # bounded, so outgoing events are never starved by a flood
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return
            engine.handle(frames[0], frames[1:])

    def _shutdown(self) -> None:
        assert self.outbox is not None and self.router is not None
        error = OperationError(ErrorCode.SHUTTING_DOWN, "the daemon is shutting down")
        for job in self.ctx.scheduler.close():
            self.ctx.inflight.remove(job)
            job.fail(error)
        for job in self.ctx.inflight.all():
            job.cancel(ErrorCode.SHUTTING_DOWN.value)
        if self.executor is not None:
            self.executor.stop(self.config.shutdown_grace_s, while_waiting=self.outbox.forward_pending)
        # Whatever is still running past the grace period is answered now; its late events are dropped.
        for job in self.ctx.inflight.all():
            job.fail(error)
        self.outbox.forward_pending()
        if getattr(self, "engine", None) is not None:
            self.engine.close()
        if getattr(self, "engine", None) is not None and self.engine.refusals:
            refused = ", ".join(f"{code} {n}" for code, n in sorted(self.engine.refusals.items()))
            security_log.info("refused during this run: %s", refused)
        self.outbox.close()
        self.router.close(linger=1000)
        self.context.destroy(linger=0)
        log.info("stopped")
