"""Where the daemon caches converted models.

Why: every part that caches models must agree on one place, and tests must be able to point it
elsewhere with an environment variable instead of touching the user's home. (The state folder is
defined once, in ecco_protocol.connection_file.)
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "ECCO_DAEMON_CACHE"


def _from_env(variable: str, xdg_variable: str, xdg_default: str) -> Path:
    explicit = os.environ.get(variable)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get(xdg_variable) or str(Path.home() / xdg_default)
    return Path(base).expanduser() / "ecco-daemon"


def cache_dir() -> Path:
    """Rebuildable files (converted models): $ECCO_DAEMON_CACHE, else ~/.cache/ecco-daemon."""
    return _from_env(CACHE_ENV, "XDG_CACHE_HOME", ".cache")


def models_cache_dir() -> Path:
    """Converted models, one folder each."""
    return cache_dir() / "models"
