"""One module per group of operations; importing this package registers them all."""

from ecco_daemon.handlers import (  # noqa: F401
    analyze,
    analyze_batch,
    control,
    generate,
    generate_batch,
    models,
    replies,
    results,
)
