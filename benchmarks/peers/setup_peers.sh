#!/usr/bin/env bash
# Build the peers' environments under .cache/peers/ (gitignored), as shared/notes/peers.md prescribes:
# Ecco 0.1.2 on transformers 4.36.2, inseq 0.7.1 on transformers<5, both on CPU torch 2.13.0.
# Idempotent: an environment whose marker file exists is left alone. Usage: benchmarks/peers/setup_peers.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
peers="$root/.cache/peers"
python="${PYTHON:-python3.11}"
mkdir -p "$peers"

build_ecco() {
  local env="$peers/ecco"
  [ -f "$env/.ready" ] && return 0
  rm -rf "$env"
  "$python" -m venv "$env"
  "$env/bin/pip" install -q torch==2.13.0
  "$env/bin/pip" install -q transformers==4.36.2 captum seaborn scikit-learn pyyaml ipython "matplotlib<3.9"
  "$env/bin/pip" install -q --no-deps ecco==0.1.2
  touch "$env/.ready"
}

build_inseq() {
  local env="$peers/inseq"
  [ -f "$env/.ready" ] && return 0
  rm -rf "$env"
  "$python" -m venv "$env"
  "$env/bin/pip" install -q torch==2.13.0
  "$env/bin/pip" install -q "transformers<5" captum rich jaxtyping "typeguard<=2.13.3" treescope matplotlib tqdm \
    sentencepiece protobuf
  "$env/bin/pip" install -q --no-deps inseq==0.7.1
  touch "$env/.ready"
}

build_ecco > "$peers/ecco-setup.log" 2>&1 &
ecco_pid=$!
build_inseq > "$peers/inseq-setup.log" 2>&1 &
inseq_pid=$!
status=0
wait "$ecco_pid" || { echo "Ecco environment failed; see $peers/ecco-setup.log" >&2; status=1; }
wait "$inseq_pid" || { echo "inseq environment failed; see $peers/inseq-setup.log" >&2; status=1; }
[ "$status" = 0 ] && echo "peer environments ready in $peers"
exit "$status"
