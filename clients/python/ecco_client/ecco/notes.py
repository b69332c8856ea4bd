"""One-line notes about Ecco arguments this module accepts but does not use.

Why warnings: a notebook shows each once, and a user can silence them with the warnings filter
(``warnings.simplefilter("ignore", EccoCompatNote)``) without losing real errors.
"""

from __future__ import annotations

import warnings


class EccoCompatNote(UserWarning):
    """An Ecco argument accepted for compatibility and ignored, or an Ecco behaviour that differs here."""


def note(message: str) -> None:
    warnings.warn(message, EccoCompatNote, stacklevel=3)
