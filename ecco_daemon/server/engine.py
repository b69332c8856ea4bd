"""The protocol engine: read, authenticate and dispatch one incoming message; never leave it unanswered.

Every failure becomes an error event for the request (or, when even the id is unreadable, for id
None). Security failures (UNAUTHORIZED) are kept distinct from bad input (BAD_FRAME, BAD_REQUEST).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ecco_protocol.codec import FrameError, RawMessage, encode_message, new_event_header, split_frames
from ecco_protocol.errors import ErrorCode
from ecco_protocol.signing import Buffer, ReplayGuard, SignatureError, Signer
from ecco_protocol.version import PROTOCOL_MAJOR

from ecco_daemon.runtime.context import RuntimeContext
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job
from ecco_daemon.server.loggable import loggable
from ecco_daemon.server.outbox import Outbox
from ecco_daemon.server.registry import OperationRegistry
from ecco_daemon.server.users import User

log = logging.getLogger(__name__)
security_log = logging.getLogger("ecco_daemon.security")

MAX_REQUEST_ID_LENGTH = 128
# Messages up to this size are handled on the socket loop at once; larger ones (long prompts, many token
# ids) are authenticated, decoded, checked and tokenized on admission threads, so they never delay
# another user's ping.
INLINE_BYTES = 64 * 1024
ADMISSION_THREADS = 2
_VERSION = re.compile(r"(\d{1,4})\.(\d{1,4})", re.ASCII)


class ProtocolEngine:
    """Owns the in-flight map (through the context) and the one error path: every failure is answered here."""

    def __init__(self, ctx: RuntimeContext, registry: OperationRegistry, outbox: Outbox) -> None:
        self.ctx = ctx
        self.registry = registry
        self.outbox = outbox
        self.replay_guard = ReplayGuard()
        self.refusals: dict[str, int] = ctx.refusals
        self._refusals_lock = threading.Lock()
        self._admission = ThreadPoolExecutor(ADMISSION_THREADS, thread_name_prefix="admission")

    def handle(self, identity: bytes, frames: Sequence[Buffer]) -> None:
        """Called by the socket loop: small messages are handled now, large ones on an admission thread."""
        if sum(memoryview(frame).nbytes for frame in frames) > INLINE_BYTES:
            self._admission.submit(self.handle_now, identity, frames)
        else:
            self.handle_now(identity, frames)

    def close(self) -> None:
        self._admission.shutdown(wait=False, cancel_futures=True)

    def handle_now(self, identity: bytes, frames: Sequence[Buffer]) -> None:
        """Authenticate, parse and dispatch one message; whatever fails is answered with an error event.

        Before authentication an error reply cannot be signed (we don't know the sender's key); from the
        moment the signature verifies, every reply, the catch-all's included, is signed with their key.
        """
        request_id: str | None = None
        signer: Signer | None = None
        job: Job | None = None
        try:
            raw = split_frames(frames)
            header = raw.header()
            request_id = _request_id(header)
            user, signer = self._authenticate(raw, header)
            self.ctx.peers.seen(identity)
            job = self._job(identity, raw, header, request_id, user, signer)
            if job.operation.kind == "control":
                job.emit("result", job.operation.handler(self.ctx, job, job.params) or {})
            else:
                self._submit(job)
        except SignatureError as exc:
            self._refuse(identity, request_id, None, OperationError(ErrorCode.UNAUTHORIZED, str(exc)))
        except FrameError as exc:
            self._refuse(identity, request_id, signer, OperationError(ErrorCode.BAD_FRAME, str(exc)), job)
        except OperationError as exc:
            self._refuse(identity, request_id, signer, exc, job)
        except Exception as exc:  # a bug must not take the loop down, nor leave the caller waiting
            log.exception("unexpected failure handling request %s", loggable(request_id))
            error = OperationError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
            self._refuse(identity, request_id, signer, error, job)

    def _authenticate(self, raw: RawMessage, header: dict[str, Any]) -> tuple[User, Signer]:
        version = header.get("v")
        match = _VERSION.fullmatch(version) if isinstance(version, str) else None
        if match is None or int(match.group(1)) != PROTOCOL_MAJOR:
            raise OperationError(
                ErrorCode.UNSUPPORTED_VERSION,
                f"protocol version {loggable(version, 40)} is not supported; this daemon speaks {PROTOCOL_MAJOR}.x",
            )
        user_name, op_name, timestamp = header.get("user"), header.get("op"), header.get("ts")
        if not isinstance(user_name, str) or not isinstance(op_name, str):
            raise FrameError("header needs 'user' and 'op' strings")
        if not isinstance(timestamp, (int, float)):
            raise FrameError("header needs a numeric 'ts'")
        user = self.ctx.users.get(user_name)
        if user is None:
            raise SignatureError(f"unknown user {loggable(user_name, 64)}")
        signer = Signer(user.key)
        signer.verify(raw.signature, raw.signed_frames)
        self.replay_guard.check(raw.signature, float(timestamp))
        return user, signer

    def _job(self, identity: bytes, raw: RawMessage, header: dict[str, Any], request_id: str, user: User,
             signer: Signer) -> Job:
        size = sum(len(memoryview(f)) for f in raw.signed_frames)
        if size > self.ctx.config.max_message_bytes:
            raise OperationError(
                ErrorCode.TOO_LARGE,
                f"message is {size} bytes; the limit is {self.ctx.config.max_message_bytes} (--max-message-mb)",
            )
        content = raw.content()
        params = content.get("params", {})
        if not isinstance(params, dict):
            raise FrameError("'params' must be a map")
        op_name = header["op"]
        operation = self.registry.get(op_name)
        if operation is None:
            raise OperationError(
                ErrorCode.UNKNOWN_OPERATION,
                f"unknown operation {op_name!r}; valid: {', '.join(self.registry.names())}",
            )
        if operation.admin_only and not user.is_admin:
            raise OperationError(ErrorCode.FORBIDDEN, f"{op_name!r} is for admins; {user.name!r} is a user")
        job = Job(request_id, identity, user, operation, _parse(operation.parse, params), self.outbox, signer)
        job.journal = self.ctx.replies
        return job

    def _submit(self, job: Job) -> None:
        prepare = getattr(job.params, "prepare", None)
        if prepare is not None:
            prepare(self.ctx, job)
        if not self.ctx.inflight.add(job):
            raise OperationError(ErrorCode.BAD_REQUEST, f"request id {job.request_id!r} is already in flight")
        job.emit("accepted", {"op": job.operation.name})
        try:
            self.ctx.scheduler.submit(job)
        except BaseException:
            self.ctx.inflight.remove(job)
            raise

    def _count(self, error: OperationError) -> None:
        with self._refusals_lock:
            self.refusals[error.code.value] = self.refusals.get(error.code.value, 0) + 1

    def _refuse(self, identity: bytes, request_id: str | None, signer: Signer | None, error: OperationError,
                job: Job | None = None) -> None:
        """The one error path. A job that exists answers through itself, so it is answered exactly once."""
        self._count(error)
        if error.code is ErrorCode.UNAUTHORIZED:
            security_log.warning("refused a message (request %s): %s", loggable(request_id), loggable(error.message))
        if job is not None:
            job.fail(error)
            return
        header = new_event_header(request_id, "error", 0)
        self.outbox.send(identity, encode_message(header, error.to_content(), signer), final=True)


def _request_id(header: dict[str, Any]) -> str:
    request_id = header.get("id")
    if not isinstance(request_id, str) or not request_id or len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise FrameError(f"header needs an 'id' string of 1 to {MAX_REQUEST_ID_LENGTH} characters")
    return request_id


def _parse(parse: Any, params: dict[str, Any]) -> Any:
    try:
        return parse(params)
    except OperationError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise OperationError(ErrorCode.BAD_REQUEST, f"bad parameters: {exc}") from None
