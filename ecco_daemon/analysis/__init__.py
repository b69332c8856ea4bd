"""Ecco's analyses, in process: functions on (model, architecture, tokens) -> numpy dataclasses.

Entry points: ``service.analyze`` (one run for a request) and ``service.view`` (later views from a
stored run); underneath, ``architecture.inspect_architecture``, ``attribution.attribute`` with its
registry ``ATTRIBUTION_METHODS``, ``run.run_analysis`` and the per-analysis modules.
"""

from ecco_daemon.analysis.architecture import Architecture, inspect_architecture
from ecco_daemon.analysis.attribution import ATTRIBUTION_METHODS, Attribution, AttributionOptions, attribute
from ecco_daemon.analysis.errors import AnalysisError, InvalidArgument, NotCaptured, UnknownName, UnsupportedModel
from ecco_daemon.analysis.run import AnalysisRun, RunOptions, run_analysis
from ecco_daemon.analysis.sequence import TokenSequence, causal_sequence, masked_sequence, seq2seq_sequence

__all__ = [
    "ATTRIBUTION_METHODS",
    "AnalysisError",
    "AnalysisRun",
    "Architecture",
    "Attribution",
    "AttributionOptions",
    "InvalidArgument",
    "NotCaptured",
    "RunOptions",
    "TokenSequence",
    "UnknownName",
    "UnsupportedModel",
    "attribute",
    "causal_sequence",
    "inspect_architecture",
    "masked_sequence",
    "run_analysis",
    "seq2seq_sequence",
]
