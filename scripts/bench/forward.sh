#!/usr/bin/env bash
# Runs waygate as the forward proxy for ../shared/bench/peers.sh:
#   PROJECT_FWD_CMD='scripts/bench/forward.sh /path/to/waygate' peers.sh
# peers.sh sets LISTEN, ORIGIN_HTTP, ORIGIN_HTTPS and WORKDIR. The config lets
# loopback clients reach the loopback origin (the guard denies loopback by
# default) and allows CONNECT to the HTTPS origin's port.
set -euo pipefail
bin=${1:?usage: forward.sh WAYGATE_BINARY}
: "${LISTEN:?} ${ORIGIN_HTTPS:?} ${WORKDIR:?}"
cat > "$WORKDIR/waygate-forward.yaml" <<YAML
schema_version: 1
data_dir: $WORKDIR/data
log:
  level: warn
proxy:
  listen: "$LISTEN"
  allow_clients: [127.0.0.0/8]
  allow_destinations: [127.0.0.1/32]
  connect_ports: [443, ${ORIGIN_HTTPS##*:}]
admin:
  listen: ""
dns:
  hosts_file: none
  servers: [127.0.0.1]
YAML
exec "$bin" serve -config "$WORKDIR/waygate-forward.yaml"
