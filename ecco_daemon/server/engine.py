"""The protocol engine: read, authenticate and dispatch one incoming message; never leave it unanswered.

Every failure becomes an error event for the request (or, when even the id is unreadable, for id
None). Security failures (UNAUTHORIZED) are kept distinct from bad input (BAD_FRAME, BAD_REQUEST).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ecco_protocol.codec import FrameError, RawMessage, encode_message, new_event_header, split_frames
from ecco_protocol.errors import ErrorCode
from ecco_protocol.signing import Buffer, ReplayGuard, SignatureError, Signer
from ecco_protocol.version import PROTOCOL_MAJOR

from ecco_daemon.runtime.context import Services
from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job
from ecco_daemon.server.outbox import Outbox
from ecco_daemon.server.registry import OperationRegistry

log = logging.getLogger(__name__)
security_log = logging.getLogger("ecco_daemon.security")

MAX_REQUEST_ID_LENGTH = 128


class ProtocolEngine:
    def __init__(self, services: Services, registry: OperationRegistry, outbox: Outbox) -> None:
        self.services = services
        self.registry = registry
        self.outbox = outbox
        self.replay_guard = ReplayGuard()
        self.refusals: dict[str, int] = services.refusals

    def handle(self, identity: bytes, frames: Sequence[Buffer]) -> None:
        request_id: str | None = None
        try:
            raw = split_frames(frames)
            header = raw.header()
            request_id = _request_id(header)
            self._dispatch(identity, raw, header, request_id)
        except _Signed as exc:
            self._refuse(identity, request_id, exc)
        except FrameError as exc:
            self._refuse(identity, request_id, OperationError(ErrorCode.BAD_FRAME, str(exc)))
        except SignatureError as exc:
            self._refuse(identity, request_id, OperationError(ErrorCode.UNAUTHORIZED, str(exc)))
        except OperationError as exc:
            self._refuse(identity, request_id, exc)
        except Exception as exc:  # a bug must not take the loop down
            log.exception("unexpected failure handling a message")
            self._refuse(identity, request_id, OperationError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"))

    def _dispatch(self, identity: bytes, raw: RawMessage, header: dict[str, Any], request_id: str) -> None:
        version = str(header.get("v", ""))
        if not version.split(".")[0].isdigit() or int(version.split(".")[0]) != PROTOCOL_MAJOR:
            raise OperationError(
                ErrorCode.UNSUPPORTED_VERSION,
                f"protocol version {version!r} is not supported; this daemon speaks {PROTOCOL_MAJOR}.x",
            )
        user_name, op_name, timestamp = header.get("user"), header.get("op"), header.get("ts")
        if not isinstance(user_name, str) or not isinstance(op_name, str):
            raise FrameError("header needs 'user' and 'op' strings")
        if not isinstance(timestamp, (int, float)):
            raise FrameError("header needs a numeric 'ts'")
        user = self.services.users.get(user_name)
        if user is None:
            raise SignatureError(f"unknown user {user_name!r}")
        signer = Signer(user.key)
        signer.verify(raw.signature, raw.signed_frames)
        self.replay_guard.check(raw.signature, float(timestamp))
        # From here on, replies are signed: the sender proved who they are.
        size = sum(len(memoryview(f)) for f in raw.signed_frames)
        if size > self.services.config.max_message_bytes:
            raise _Signed(signer, OperationError(
                ErrorCode.TOO_LARGE,
                f"message is {size} bytes; the limit is {self.services.config.max_message_bytes}",
            ))
        try:
            content = raw.content()
            params = content.get("params", {})
            if not isinstance(params, dict):
                raise FrameError("'params' must be a map")
            operation = self.registry.get(op_name)
            if operation is None:
                raise OperationError(
                    ErrorCode.UNKNOWN_OPERATION,
                    f"unknown operation {op_name!r}; valid: {', '.join(self.registry.names())}",
                )
            if operation.admin_only and not user.is_admin:
                raise OperationError(ErrorCode.FORBIDDEN, f"{op_name!r} is for admins; {user.name!r} is a user")
            parsed = _parse(operation.parse, params)
        except FrameError as exc:
            raise _Signed(signer, OperationError(ErrorCode.BAD_FRAME, str(exc))) from None
        except OperationError as exc:
            raise _Signed(signer, exc) from None
        job = Job(request_id, identity, user, operation, parsed, self.services, self.outbox, signer)
        if operation.kind == "control":
            self._run_control(job)
        else:
            self._submit(job)

    def _run_control(self, job: Job) -> None:
        try:
            result = job.operation.handler(job, job.params)
            job.emit("result", result or {})
        except OperationError as exc:
            self._count(exc)
            job.fail(exc)

    def _submit(self, job: Job) -> None:
        prepare = getattr(job.params, "prepare", None)
        try:
            if prepare is not None:
                prepare(job)
            if not self.services.inflight.add(job):
                raise OperationError(ErrorCode.BAD_REQUEST, f"request id {job.request_id!r} is already in flight")
        except OperationError as exc:
            self._count(exc)
            job.fail(exc)
            return
        job.emit("accepted", {"op": job.operation.name})
        try:
            self.services.scheduler.submit(job)
        except OperationError as exc:
            self._count(exc)
            self.services.inflight.remove(job)
            job.fail(exc)

    def _count(self, error: OperationError) -> None:
        self.refusals[error.code.value] = self.refusals.get(error.code.value, 0) + 1

    def _refuse(self, identity: bytes, request_id: str | None, error: OperationError | _Signed) -> None:
        signer = None
        if isinstance(error, _Signed):
            signer, error = error.signer, error.error
        self._count(error)
        if error.code is ErrorCode.UNAUTHORIZED:
            security_log.warning("refused a message (request %s): %s", request_id, error.message)
        header = new_event_header(request_id, "error", 0)
        self.outbox.send(identity, encode_message(header, error.to_content(), signer))


class _Signed(Exception):
    """An error for an authenticated sender: its reply is signed with their key."""

    def __init__(self, signer: Signer, error: OperationError) -> None:
        self.signer = signer
        self.error = error


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
