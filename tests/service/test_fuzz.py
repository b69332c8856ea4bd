"""The fuzzer against a live daemon (a bounded run; benchmarks/fuzz.py runs 100,000 frames).

Every registered operation is fuzzed; after each batch the daemon must still answer a ping, and no reply
may be INTERNAL, missing, duplicated or badly signed. A failing batch is shrunk by hypothesis and its
messages are printed (tests/fuzz/plans.py ``Plan.describe``).
"""

from __future__ import annotations

import pytest

import ecco_daemon.handlers  # noqa: F401  (registers every operation)
from ecco_daemon.handlers.analyze import ANALYSIS_PARAMS
from ecco_daemon.handlers.generate import GENERATE_PARAMS
from ecco_daemon.server.registry import OPERATIONS
from tests.fuzz.fields import FIELDS
from tests.fuzz.session import FuzzSession, fuzz_daemon

BATCHES = 120  # about 1,500 messages: well under a minute on two cores


@pytest.fixture(scope="module")
def fuzzed(tiny_llama, tmp_path_factory, request):
    with fuzz_daemon(tmp_path_factory.mktemp("fuzz"), [tiny_llama]) as daemon:
        request.node._daemon_process = daemon
        yield daemon


def test_the_fuzzer_knows_every_operation_and_parameter():
    assert sorted(FIELDS) == OPERATIONS.names()
    assert set(FIELDS["generate"]) == set(GENERATE_PARAMS)
    assert set(ANALYSIS_PARAMS) <= set(FIELDS["analyze"])


def test_fuzzed_traffic_never_breaks_the_daemon(fuzzed):
    session = FuzzSession(fuzzed)
    counts = session.run(BATCHES, batch_size=20, min_batch=5)
    assert counts.clean, "\n".join(counts.failures)
    assert counts.frames >= 5 * BATCHES
    # The traffic reached the work itself, not only the first checks.
    assert counts.by_operation[("analyze", "OK")] > 0 and counts.codes["BAD_FRAME"] > 0
