"""The language server's log: a refusal answered to the client is one line at INFO, not a traceback."""

from __future__ import annotations

import logging
import sys

import pytest

from ecco_client.lsp.errors import BadArguments, CommandFailed
from ecco_client.lsp.server import RefusalsInOneLine


def logged(error: Exception) -> logging.LogRecord:
    """The record pygls's json_rpc logs when a request's handler raised ``error``."""
    try:
        raise error
    except Exception:
        record = logging.getLogger("pygls.protocol.json_rpc").makeRecord(
            "pygls.protocol.json_rpc", logging.ERROR, __file__, 1, 'Exception occurred for message "%s"', ("5",),
            exc_info=sys.exc_info(),
        )
    assert RefusalsInOneLine().filter(record)
    return record


@pytest.mark.parametrize("error", [CommandFailed("the daemon refused: watch entry ' x y' is 2 tokens", "BAD_REQUEST"),
                                   BadArguments("ecco.recompute takes (resultId, view, params)")])
def test_a_refusal_is_one_line_at_info(error: Exception) -> None:
    record = logged(error)
    assert record.levelno == logging.INFO and record.exc_info is None
    text = logging.Formatter("%(levelname)s %(message)s").format(record)
    assert text == f"INFO message 5 answered with the error: {error}"


def test_a_fault_keeps_its_traceback() -> None:
    record = logged(KeyError("layer"))
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "Traceback" in logging.Formatter().format(record)
