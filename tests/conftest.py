"""Shared fixtures: tiny models built once per session, and the real daemon as a subprocess."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import ecco_client
from tests.daemon_process import DaemonProcess, ExecutorChoice
from tests.tiny_models import build_tiny_model

os.environ.setdefault("OMP_NUM_THREADS", "1")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="session")
def tiny_model_factory(tmp_path_factory: pytest.TempPathFactory):
    built: dict[str, Path] = {}

    def build(family: str) -> Path:
        if family not in built:
            built[family] = build_tiny_model(family, tmp_path_factory.mktemp(f"tiny-{family}"))
        return built[family]

    return build


@pytest.fixture(scope="session")
def tiny_llama(tiny_model_factory) -> Path:
    return tiny_model_factory("llama")


@pytest.fixture(scope="module")
def executor() -> ExecutorChoice:
    """In process here; the service tier runs its tests on model replicas on Ray too (tests/service/conftest.py
    overrides this fixture with both)."""
    return ExecutorChoice()


@pytest.fixture(scope="module")
def daemon(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory, request,
           executor: ExecutorChoice) -> Iterator[DaemonProcess]:
    """One daemon per test module, serving the tiny Llama; its log is attached to failing tests."""
    process = DaemonProcess(tmp_path_factory.mktemp("daemon"), [str(tiny_llama)], executor.args, env=executor.env)
    with process:
        request.node._daemon_process = process
        yield process


@pytest.fixture(scope="module")
def daemon_client(daemon: DaemonProcess) -> Iterator[ecco_client.Client]:
    """A blocking client of the module's daemon, through the public API."""
    with ecco_client.connect(connection_file=daemon.connection_file, timeout=120) as client:
        yield client


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for fixture_name in ("daemon", "fresh_daemon"):
            process = item.funcargs.get(fixture_name) if hasattr(item, "funcargs") else None
            if isinstance(process, DaemonProcess):
                report.sections.append((f"{fixture_name} log", process.log()[-20000:]))


@pytest.fixture(scope="session")
def smollm2_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """The real SmolLM2-135M-Instruct behind a real daemon, shared by the integration tier."""
    with DaemonProcess(tmp_path_factory.mktemp("smollm2-daemon"), ["smollm2-135m"]) as process:
        yield process
