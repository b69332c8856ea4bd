"""Several clients at once: each its own connection and thread, released together from one start line."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import ecco_client


def run_at_once(connection_file: Path, n_clients: int, work: Callable[[ecco_client.Client, int], None],
                timeout: float = 300.0) -> float:
    """Run ``work(client, index)`` for every client at once; the seconds from the common start to the last
    end. The first error any client raised is raised here, after all of them ended."""
    clients = [ecco_client.connect(connection_file=connection_file, timeout=timeout) for _ in range(n_clients)]
    errors: list[BaseException] = []
    start_line = threading.Barrier(n_clients + 1)

    def run(index: int) -> None:
        start_line.wait()
        try:
            work(clients[index], index)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_clients)]
    for thread in threads:
        thread.start()
    start_line.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    for client in clients:
        client.close()
    if errors:
        raise errors[0]
    return seconds
