"""Requests the fuzzer (tests/fuzz) found answered INTERNAL, each kept as a regression test.

Each is valid, or invalid in a way the daemon must refuse with a stable code; none may be a traceback.
"""

from __future__ import annotations

import pytest

from tests.service.multiuser_support import RawClient


@pytest.fixture(scope="module")
def raw(daemon):
    client = RawClient.from_file(daemon.connection_file)
    yield client
    client.close()


def test_encoding_no_texts_answers_no_ids(raw):
    event, content = raw.call("tokens.encode", {"text": []})
    assert event == "result", content
    assert content["input_ids"] == [] and content["tokens"] == []
