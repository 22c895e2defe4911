#!/usr/bin/env bash
# Installs etcd (server and etcdctl) from Debian for bench/metadata.ts, which runs it side by side
# with cairn. Called by the benchmark only when `etcd` is missing; never run by tests or CI.
set -euo pipefail
if command -v etcd >/dev/null 2>&1; then
  echo "etcd already installed: $(command -v etcd)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends etcd-server etcd-client
# Debian's package enables a system-wide etcd service on 2379/2380; the benchmark starts its own
# members on other ports and does not need it.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now etcd >/dev/null 2>&1 || true
fi
etcd --version
