#!/usr/bin/env bash
# Builds waygate and runs the side-by-side peer benchmark (Squid, Privoxy,
# tinyproxy, nginx, HAProxy, ...) with waygate as one more forward-proxy and
# one more reverse-proxy column. The harness
# lives outside this repository, in ../shared/bench beside the checkout; pass
# its path as HARNESS if it is elsewhere. Extra environment (RUNS, PEERS,
# DURATION, ...) is passed through; see the harness's README.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
harness=${HARNESS:-$root/../shared/bench/peers.sh}
if [ ! -x "$harness" ]; then
  echo "peer harness not found at $harness (set HARNESS); skipping" >&2
  exit 0
fi
bin=$(mktemp -d)/waygate
"$root/scripts/build.sh" "$bin" # the release build
export PROJECT_NAME=${PROJECT_NAME:-waygate}
export PROJECT_FWD_CMD="$root/scripts/bench/forward.sh $bin"
export PROJECT_REV_CMD="$root/scripts/bench/reverse.sh $bin"
export PEERS=${PEERS:-direct squid squid-mem tinyproxy privoxy nginx haproxy}
exec "$harness"
