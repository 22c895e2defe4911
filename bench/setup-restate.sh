#!/usr/bin/env bash
# Installs Restate's server (@restatedev/restate-server 1.7.x, the npm package with the prebuilt
# binary) into a cache directory for bench/invocations.ts, which runs it side by side with cairn.
# Not a package.json dependency: tests and CI never download it. Prints the binary's path last.
# Usage: bench/setup-restate.sh [cache-dir]   (default ${XDG_CACHE_HOME:-$HOME/.cache}/cairn-bench/restate-1.7)
set -euo pipefail
VERSION_RANGE="~1.7.0"
DIR="${1:-${CAIRN_RESTATE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cairn-bench/restate-1.7}}"
find_bin() {
  # The wrapper package resolves a platform package holding the binary (restate-server-linux-x64, ...).
  find "$DIR/node_modules/@restatedev" -type f -name restate-server -path '*/bin/*' -perm -u+x 2>/dev/null | grep -v '/restate-server/bin/' | head -n 1
}
BIN="$(find_bin || true)"
if [ -z "$BIN" ]; then
  mkdir -p "$DIR"
  [ -f "$DIR/package.json" ] || echo '{"name":"cairn-bench-restate","private":true}' > "$DIR/package.json"
  npm install --prefix "$DIR" --no-audit --no-fund --no-save "@restatedev/restate-server@${VERSION_RANGE}" >&2
  BIN="$(find_bin || true)"
fi
if [ -z "$BIN" ]; then
  echo "error: no restate-server binary under $DIR/node_modules/@restatedev after npm install" >&2
  exit 1
fi
"$BIN" --version >&2
echo "$BIN"
