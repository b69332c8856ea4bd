"""Ecco's analyses, in process: functions on (model, architecture, tokens) -> numpy dataclasses."""
