"""One module per operation (control operations grouped); importing this package registers them all."""

from ecco_daemon.handlers import analyze, control, generate, models, replies, results, tokens, view  # noqa: F401
