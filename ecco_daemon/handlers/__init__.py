"""One module per group of operations; importing this package registers them all."""

from . import control, generate, models  # noqa: F401
