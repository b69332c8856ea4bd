"""What the front door and a model replica pass each other: plain, picklable data, no Ray.

Why its own module: both sides import it (the daemon's executor and the replica process), and keeping it
free of Ray and of sockets lets either side be tested alone. A job crosses as a ``Ticket`` (its request,
never the user's key); work comes back as ``Reply`` objects: results to store, events to send, outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ecco_protocol.errors import ErrorCode

from ecco_daemon.server.errors import OperationError

if TYPE_CHECKING:
    from ecco_daemon.server.job import Job

JobKey = tuple[str, str]  # (user name, request id): request ids are unique per user only


@dataclass(frozen=True)
class Ticket:
    """A job as a replica sees it: who asked (name and role, no key) and the parsed request."""

    user: str
    role: str
    request_id: str
    op: str
    params: Any
    batch_key: tuple[Any, ...] | None
    model: str | None
    cost: int

    @property
    def key(self) -> JobKey:
        return (self.user, self.request_id)

    @classmethod
    def of(cls, job: Job) -> Ticket:
        return cls(job.user.name, job.user.role, job.request_id, job.operation.name, job.params, job.batch_key,
                   job.model, job.cost)


@dataclass(frozen=True)
class Put:
    """A result the replica computed, for the front door's store under the id the reply already names."""

    user: str
    kind: str
    value: Any
    nbytes: int
    result_id: str


@dataclass(frozen=True)
class Event:
    key: JobKey
    event: str
    content: dict[str, Any]


# How a job ended, across the process boundary: ("result", dict), ("cancelled", None) -- the front door
# knows why (cancel, TIMEOUT, shutdown) -- or ("error", {code, message, details}).
WireOutcome = tuple[str, Any]


@dataclass
class Reply:
    """One call's worth of work: apply ``puts`` first, then ``events``, then ``outcomes`` (in that order,
    so a result id in a reply is always in the store before the caller can ask for a view of it)."""

    puts: list[Put] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    outcomes: list[tuple[JobKey, WireOutcome]] = field(default_factory=list)
    # The shared pass broke (or the replica refuses work): every job of the call gets this error.
    failed: dict[str, Any] | None = None


def error_content(error: OperationError) -> dict[str, Any]:
    return {"code": error.code.value, "message": error.message, "details": error.details}


def error_from(content: dict[str, Any]) -> OperationError:
    return OperationError(ErrorCode(content["code"]), content["message"], content.get("details") or None)


class VersionMismatch(OperationError):
    """The daemon and a replica run different project versions: they refuse to work together."""

    def __init__(self, daemon_version: str, replica_version: str, where: str) -> None:
        super().__init__(
            ErrorCode.INTERNAL,
            f"version mismatch: this daemon runs ecco-daemon {daemon_version} but the replica on {where} runs "
            f"{replica_version}; install the same ecco-daemon version on every Ray node",
            {"daemon_version": daemon_version, "replica_version": replica_version},
        )


def check_versions(daemon_version: str, replica_version: str, where: str) -> None:
    if daemon_version != replica_version:
        raise VersionMismatch(daemon_version, replica_version, where)
