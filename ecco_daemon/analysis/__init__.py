"""Ecco's analyses, in process: functions on (model, architecture, tokens) -> numpy dataclasses.

Entry points: ``service.analyze`` (one run for a request) and ``service.view`` (later views from a
stored run), both driven by one ``options.AnalysisOptions`` built from the request; underneath,
``architecture.inspect_architecture``, ``attribution.attribute`` with the registry in ``methods``,
``run.run_analysis`` and the per-analysis modules.
"""

# The methods register themselves on import; importing any analysis module fills the registry first.
from ecco_daemon.analysis import attribution  # noqa: F401
