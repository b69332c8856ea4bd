#!/usr/bin/env bash
# Sets up a fresh machine, idempotently: the virtual environment (torch 2.13.0 CPU first, so nothing can
# pull a CUDA build), the three packages, and with --test the browser, sshd, Node packages and VS Code server.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WITH_TEST=0
[[ "${1:-}" == "--test" ]] && WITH_TEST=1
say() { printf '\033[1;34m==> %s\033[0m\n' "$*"; }

if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv"
  python3 -m venv .venv
fi
PY=.venv/bin/python
if ! $PY -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  say "installing torch 2.13.0 (CPU) first"
  $PY -m pip install -q --upgrade pip
  $PY -m pip install -q torch==2.13.0
fi
EXTRAS=""
[[ $WITH_TEST == 1 ]] && EXTRAS="[test]"
# Skip pip when nothing it reads has changed since the last install (a warm run takes seconds).
STAMP=".venv/.ecco-installed$EXTRAS"
WANT=$(cat pyproject.toml protocol/python/pyproject.toml clients/python/pyproject.toml | sha256sum | cut -c1-16)
if [[ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]]; then
  say "installing ecco-client and ecco-daemon$EXTRAS"
  $PY -m pip install -q -e protocol/python -e clients/python -e ".$EXTRAS"
  echo "$WANT" > "$STAMP"
fi
$PY -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
# The renderer bundle every page, notebook and panel inlines (the demo writes a page): built from
# clients/vscode when missing or older than its sources.
BUNDLE=clients/python/ecco_client/render/static/ecco-render.js
if [[ ! -f $BUNDLE || -n "$(find clients/vscode/renderer -newer "$BUNDLE" -name '*.ts' -print -quit)" ]]; then
  say "building the renderer bundle (clients/vscode)"
  (cd clients/vscode && { [[ -x node_modules/.bin/esbuild ]] || npm ci --no-audit --no-fund --loglevel=error; } \
    && npm run --silent build:renderer)
fi

if [[ $WITH_TEST == 1 ]]; then
  need_apt=()
  [[ -x /usr/bin/chromium ]] || need_apt+=(chromium)
  [[ -x /usr/sbin/sshd ]] || need_apt+=(openssh-server)
  command -v ssh >/dev/null || need_apt+=(openssh-client)
  for pkg in pkg-config libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
  done
  if (( ${#need_apt[@]} )); then
    say "apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
  say "npm packages and the renderer bundle (clients/vscode)"
  (cd clients/vscode && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
  if [[ -x clients/vscode/e2e/install-code-server.sh ]]; then
    say "VS Code server build (code-server) for the editor tests"
    clients/vscode/e2e/install-code-server.sh
  fi
fi
say "setup done ($ROOT)"
