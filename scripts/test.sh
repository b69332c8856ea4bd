#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up everything the tiers need, then run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
