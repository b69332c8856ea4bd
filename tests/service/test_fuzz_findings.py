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


@pytest.fixture(scope="module")
def result_id(raw) -> str:
    event, content = raw.call("analyze", {"text": "The cat sat on the mat."}, timeout_s=120)
    assert event == "result", content
    return content["result_id"]


def test_view_parameter_names_given_as_bytes_are_refused(raw, result_id):
    event, content = raw.call("view", {"result_id": result_id, "view": "layer-predictions",
                                       "params": {"position": 1, b"topk": 2}})
    assert event == "error" and content["code"] == "BAD_REQUEST", content
    assert "string keys" in content["message"]


@pytest.mark.parametrize(("view", "params"), [
    ("attention", {"layer": []}),
    ("layer_predictions", {"positions": []}),
    ("states", {"what": "hidden", "layers": []}),
    ("primary_attributions", {"ignore_tokens": []}),
])
def test_empty_lists_in_view_parameters_are_answered(raw, result_id, view, params):
    """An empty list of layers once reached np.stack (INTERNAL); each view answers or refuses it."""
    event, content = raw.call("view", {"result_id": result_id, "view": view, "params": params})
    assert event == "result" or content["code"] == "BAD_REQUEST", content
