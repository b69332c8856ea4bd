#!/usr/bin/env bash
# The prepared device run for issue 14, as one command for the device tool (timeout_s 540):
#   bash benchmarks/gpu/replicas_gpu.sh
# 1. benchmarks/gpu/attribution_gpu.py: generation per token (static cache against Hugging Face's) and end to
#    end against Ecco at 8/32/64 tokens (see benchmarks/README.md; carry .cache/gpu-wheels for captum).
# 2. benchmarks/replicas.py on a SmolLM2-shaped model: in process against 1 and 2 Ray replicas sharing the GPU
#    (0.5 GPU each). Ray's wheel (about 80 MB) is over the device tool's carry limit, so this part runs only
#    where Ray is installed on the GPU host (pip install 'ecco-daemon[ray]'); elsewhere it says so and skips.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$(mktemp -d)}
if ls .cache/gpu-wheels/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .cache/gpu-wheels/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
timeout 330 python3 benchmarks/gpu/attribution_gpu.py --budget-s 200 --out "$OUT/gpu.json" 2>&1 | tee "$OUT/gpu.log"
if python3 -c "import ray" 2>/dev/null; then
  timeout 180 python3 benchmarks/replicas.py --smollm2-shaped --gpus-per-replica 0.5 --rounds 2 \
      --latency-requests 100 --json "$OUT/replicas.json" 2>&1 | tee "$OUT/replicas.log"
else
  echo "ray is not installed here: the replica benchmark is skipped (pip install 'ecco-daemon[ray]')" \
      | tee "$OUT/replicas.log"
fi
