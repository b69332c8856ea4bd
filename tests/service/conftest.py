"""The service tier on both executors: worker threads in the daemon, and model replicas on Ray.

A module that sets ``EXECUTORS = ("thread", "ray")`` runs every test that uses its daemon (the shared
``daemon`` fixture, or its own one built from ``executor``) twice, ``[thread]`` and ``[ray]``: the same
requests must give the same results either way. The Ray daemons join one real local cluster on loopback,
started once per session. Other modules run on the default executor only (the Ray runs cost daemon starts).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.daemon_process import ExecutorChoice
from tests.ray_cluster import RayCluster

REPLICAS = 2
# Two CPUs shared by every replica of every module's daemon (the analysis module loads four models).
CPUS_PER_REPLICA = "0.25"


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    cluster = RayCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


def ray_args(address: str | None, replicas: int = REPLICAS) -> list[str]:
    """``serve`` arguments for model replicas: on the cluster at ``address``, or (None) a local instance."""
    where = ["--ray", address] if address else ["--ray", "--ray-num-cpus", "2"]
    return [*where, "--replicas", str(replicas), "--cpus-per-replica", CPUS_PER_REPLICA]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    kinds = getattr(metafunc.module, "EXECUTORS", None)
    if kinds and "executor" in metafunc.fixturenames:
        metafunc.parametrize("executor", kinds, indirect=True, scope="module")


@pytest.fixture(scope="module")
def executor(request: pytest.FixtureRequest) -> ExecutorChoice:
    if getattr(request, "param", "thread") == "thread":
        return ExecutorChoice()
    cluster: RayCluster = request.getfixturevalue("ray_cluster")
    replicas = getattr(request.module, "RAY_REPLICAS", REPLICAS)  # a module may ask for fewer
    return ExecutorChoice(ray_args(cluster.address, replicas), cluster.env)
