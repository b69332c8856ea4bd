"""A worker thread per device: takes jobs from the scheduler and runs them, answering each exactly once."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ecco_client.wire.errors import ErrorCode

from .server.errors import OperationError
from .server.job import Cancelled, Job, JobState

if TYPE_CHECKING:
    from .services import Services

log = logging.getLogger(__name__)


def is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def run_job(job: Job) -> None:
    """Run one job; every way out of the handler ends in exactly one terminal event."""
    services = job.services
    try:
        if job.cancelled:
            raise Cancelled()
        job.state = JobState.RUNNING
        job.progress("running")
        result = job.operation.handler(job, job.params)
        job.emit("result", result or {})
    except Cancelled:
        code = ErrorCode(job.cancel_code)
        why = "the daemon is shutting down" if code is ErrorCode.SHUTTING_DOWN else "cancelled by request"
        job.fail(OperationError(code, why))
    except OperationError as exc:
        job.fail(exc)
    except Exception as exc:
        if is_out_of_memory(exc):
            log.warning("job %s of %s ran out of memory", job.request_id, job.user.name)
            services.release_device_memory()
            job.fail(OperationError(ErrorCode.OUT_OF_MEMORY, f"out of memory: {exc}"))
        else:
            log.exception("job %s (%s) failed", job.request_id, job.operation.name)
            job.fail(OperationError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"))
    finally:
        job.state = JobState.DONE
        services.inflight.remove(job)


class Worker(threading.Thread):
    def __init__(self, services: Services, name: str = "worker-0") -> None:
        super().__init__(name=name, daemon=True)
        self.services = services
        self._stop_event = threading.Event()

    def run(self) -> None:
        scheduler = self.services.scheduler
        while not self._stop_event.is_set():
            batch = scheduler.next_batch(max_size=1, timeout=0.5)
            for job in batch:
                run_job(job)

    def stop(self) -> None:
        self._stop_event.set()
