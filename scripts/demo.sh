#!/usr/bin/env bash
# The main job: set up, start the daemon on the embedded SmolLM2-135M-Instruct, generate from
# "The capital of France is" printing each token with its probability and top alternatives, then explain
# that continuation: its tokens colored by probability and saliency with the numbers beside them, and one
# self-contained page (probability, saliency, layer predictions, rankings, neuron factors); stop.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export ECCO_DAEMON_HOME="${ECCO_DAEMON_HOME:-$PWD/.cache/demo-state}"
ADDRESS="${ECCO_DEMO_ADDRESS:-ipc://$PWD/.cache/demo.sock}"
mkdir -p .cache
printf '\033[1;34m==> %s\033[0m\n' "fetching and caching the default model (first run only)"
.venv/bin/ecco-daemon pull smollm2-135m
printf '\033[1;34m==> %s\033[0m\n' "starting ecco-daemon on $ADDRESS"
rm -f "$ECCO_DAEMON_HOME/connection.json"
.venv/bin/ecco-daemon serve --address "$ADDRESS" --model smollm2-135m > .cache/demo-daemon.log 2>&1 &
DAEMON=$!
trap 'kill -TERM $DAEMON 2>/dev/null; wait $DAEMON 2>/dev/null || true' EXIT
until [[ -f "$ECCO_DAEMON_HOME/connection.json" ]]; do
  kill -0 $DAEMON 2>/dev/null || { cat .cache/demo-daemon.log; exit 1; }
  sleep 0.2
done
.venv/bin/ecco-client wait --for 120
.venv/bin/ecco-client generate "The capital of France is" --generate 10 --alternatives 3
printf '\033[1;34m==> %s\033[0m\n' "explaining the continuation: probability, saliency (grad x input), layer predictions, rankings"
.venv/bin/ecco-client explain "The capital of France is" --generate 3 --attribution grad_x_input \
  --html .cache/demo-explanation.html
