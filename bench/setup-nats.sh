#!/usr/bin/env bash
# Installs nats-server from Debian for bench/log.ts, which runs a 3-server JetStream cluster side
# by side with cairn. Called by the benchmark only when `nats-server` is missing; never run by tests or CI.
set -euo pipefail
if command -v nats-server >/dev/null 2>&1; then
  echo "nats-server already installed: $(command -v nats-server)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends nats-server
# The package may enable a system-wide service on 4222; the benchmark starts its own servers on other ports.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now nats-server >/dev/null 2>&1 || true
fi
nats-server --version
