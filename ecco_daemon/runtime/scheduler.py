"""Fair queueing of model work: round-robin across users, so one user's burst never starves the others."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from ecco_protocol.errors import ErrorCode

from ecco_daemon.server.errors import OperationError
from ecco_daemon.server.job import Job, JobState

PositionListener = Callable[[Job, int, int], None]
# A job hears its queue position when it is queued, then at most once per interval while it changes
# (``tick`` sends what changed since): events grow with waiting time, not with the square of the queue.
POSITION_INTERVAL_S = 1.0


class Scheduler:
    def __init__(self, max_queued_per_user: int = 64, on_position: PositionListener | None = None, *,
                 max_job_cost: int | None = None, max_queued_cost_per_user: int | None = None,
                 position_interval_s: float = POSITION_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_queued_per_user = max_queued_per_user
        # Request size limits in work units (Job.cost: tokens, times attribution steps where there are some).
        self.max_job_cost = max_job_cost
        self.max_queued_cost_per_user = max_queued_cost_per_user
        self._queues: OrderedDict[str, deque[Job]] = OrderedDict()
        self._cond = threading.Condition()
        self._closed = False
        self._on_position = on_position
        self._last_position: dict[tuple[str, str], tuple[int, float]] = {}  # key -> (position, when told)
        self._position_interval_s = position_interval_s
        self._clock = clock
        self._positions_stale = False

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closed:
                raise OperationError(ErrorCode.SHUTTING_DOWN, "the daemon is shutting down")
            if self.max_job_cost is not None and job.cost > self.max_job_cost:
                raise OperationError(
                    ErrorCode.TOO_LARGE,
                    f"this request costs {job.cost} work units (tokens x steps); the limit is {self.max_job_cost} "
                    "(ecco-daemon serve --max-job-cost); use fewer tokens or steps",
                    {"cost": job.cost, "limit": self.max_job_cost, "flag": "--max-job-cost"},
                )
            queue = self._queues.get(job.user.name, deque())
            if len(queue) >= self.max_queued_per_user:
                raise OperationError(
                    ErrorCode.QUOTA_EXCEEDED,
                    f"user {job.user.name!r} already has {len(queue)} jobs queued (limit {self.max_queued_per_user})",
                )
            queued_cost = sum(j.cost for j in queue) + job.cost
            if self.max_queued_cost_per_user is not None and queued_cost > self.max_queued_cost_per_user:
                raise OperationError(
                    ErrorCode.QUOTA_EXCEEDED,
                    f"user {job.user.name!r} would have {queued_cost} work units queued "
                    f"(limit {self.max_queued_cost_per_user})",
                )
            queue.append(job)
            self._queues[job.user.name] = queue
            self._cond.notify()
        self._announce_positions()

    def next_batch(self, max_size: int = 1, timeout: float | None = None) -> list[Job]:
        """The next job in round-robin order, plus up to max_size-1 queued jobs that share its batch key."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._closed or self._has_work(), timeout=timeout):
                return []
            if not self._has_work():
                return []
            first = self._pop_round_robin()
            batch = [first]
            if max_size > 1 and first.batch_key is not None:
                batch += self._take_compatible(first.batch_key, max_size - 1)
            self._mark_running(batch)
        self._announce_positions()
        return batch

    def join_batch(self, batch_key: tuple[object, ...], limit: int) -> list[Job]:
        """Queued jobs that may join a batch already running (at most ``limit``).

        Only while the next job in round-robin order shares the key: otherwise the batch drains and that
        job gets its turn, so a batch that keeps growing never starves other kinds of work.
        """
        with self._cond:
            if limit <= 0 or not self._has_work():
                return []
            first = next(iter(self._queues.values()))[0]
            if first.batch_key != batch_key:
                return []
            batch = self._take_compatible(batch_key, limit)
            for job in batch:
                # Like a served user, a user whose job joined goes to the back of the rotation.
                if job.user.name in self._queues:
                    self._queues.move_to_end(job.user.name)
            self._mark_running(batch)
        if batch:
            self._announce_positions()
        return batch

    def next_batch_unless(self, batch_key: tuple[object, ...], max_size: int = 1) -> list[Job]:
        """The next batch in round-robin order, but only if its head would not join ``batch_key``'s batch.

        A worker busy with a long batch serves such jobs between its steps, so other kinds of work (an
        analysis, a model load, another model's generation) wait one step, not the whole batch.
        """
        with self._cond:  # reentrant: the check and the take are one step
            if not self._has_work() or next(iter(self._queues.values()))[0].batch_key == batch_key:
                return []
            return self.next_batch(max_size, timeout=0)

    def next_accepted(self, accept: Callable[[Job], bool], timeout: float | None = None) -> Job | None:
        """The first job in round-robin order that ``accept`` takes (a router with room for it), or None.

        Why: with model replicas a dispatcher hands jobs out one at a time; a job whose replicas are all
        full (or restarting) keeps its place while jobs for other models go by.
        """
        with self._cond:
            job = self._take_accepted(accept)
            if job is None and not self._closed:
                self._cond.wait(timeout)
                job = self._take_accepted(accept)
            if job is not None:
                self._mark_running([job])
        if job is not None:
            self._announce_positions()
        return job

    def wake(self) -> None:
        """Wake a waiting ``next_accepted``: a router has room again."""
        with self._cond:
            self._cond.notify_all()

    def _take_accepted(self, accept: Callable[[Job], bool]) -> Job | None:
        for job in self._round_robin_order():
            if accept(job):
                queue = self._queues[job.user.name]
                queue.remove(job)
                self._queues.move_to_end(job.user.name)  # served: to the back of the rotation
                if not queue:
                    del self._queues[job.user.name]
                return job
        return None

    def _mark_running(self, batch: list[Job]) -> None:
        for job in batch:
            job.state = JobState.RUNNING
            self._last_position.pop(job.key, None)

    def remove(self, job: Job) -> bool:
        """Take a queued job out (cancel); False when it already left the queue."""
        with self._cond:
            queue = self._queues.get(job.user.name)
            if queue is None or job not in queue:
                return False
            queue.remove(job)
            if not queue:
                del self._queues[job.user.name]
            self._last_position.pop(job.key, None)
        self._announce_positions()
        return True

    def close(self) -> list[Job]:
        """Refuse new work and hand back everything still queued."""
        with self._cond:
            self._closed = True
            left = [job for queue in self._queues.values() for job in queue]
            self._queues.clear()
            self._cond.notify_all()
        return left

    def snapshot(self, user: str | None = None) -> list[dict[str, object]]:
        with self._cond:
            order = self._round_robin_order()
        return [
            {"id": job.request_id, "user": job.user.name, "op": job.operation.name, "position": pos}
            for pos, job in enumerate(order, start=1)
            if user is None or job.user.name == user
        ]

    def __len__(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._queues.values())

    def _has_work(self) -> bool:
        return any(self._queues.values())

    def _pop_round_robin(self) -> Job:
        user, queue = next(iter(self._queues.items()))
        job = queue.popleft()
        # The user just served goes to the back of the rotation.
        self._queues.move_to_end(user)
        if not queue:
            del self._queues[user]
        return job

    def _take_compatible(self, batch_key: tuple[object, ...], limit: int) -> list[Job]:
        taken: list[Job] = []
        for job in self._round_robin_order():
            if len(taken) >= limit:
                break
            if job.batch_key == batch_key:
                queue = self._queues[job.user.name]
                queue.remove(job)
                if not queue:
                    del self._queues[job.user.name]
                taken.append(job)
        return taken

    def _round_robin_order(self) -> list[Job]:
        """The order jobs would run in if nothing new arrived: one from each user in turn."""
        queues = [list(q) for q in self._queues.values()]
        order: list[Job] = []
        depth = 0
        while True:
            layer = [q[depth] for q in queues if depth < len(q)]
            if not layer:
                return order
            order += layer
            depth += 1

    def tick(self) -> None:
        """Called by the socket loop on every turn: sends queue positions held back by the interval."""
        if self._positions_stale:
            self._announce_positions()

    def _announce_positions(self) -> None:
        if self._on_position is None:
            return
        # Announced under the lock, so no worker can start a job between its "queued" event being
        # decided and sent (a "queued" after "running" would confuse the requester).
        with self._cond:
            order = self._round_robin_order()
            total = len(order)
            now = self._clock()
            stale = False
            for position, job in enumerate(order, start=1):
                last = self._last_position.get(job.key)
                if last is not None and last[0] == position:
                    continue
                if last is not None and now - last[1] < self._position_interval_s:
                    stale = True  # told recently; the next tick after the interval tells the new one
                    continue
                self._last_position[job.key] = (position, now)
                self._on_position(job, position, total)
            self._positions_stale = stale
