#!/usr/bin/env bash
# Runs waygate as the reverse proxy for ../shared/bench/peers.sh:
#   PROJECT_REV_CMD='scripts/bench/reverse.sh /path/to/waygate' peers.sh
# peers.sh sets LISTEN, ORIGIN_HTTP and WORKDIR. One route sends every
# request to the origin; compression is on with gzip level 1 first, as the
# peers (nginx, HAProxy) are configured; the audit trail is on (data_dir in
# WORKDIR), as the peers keep access logs. AUDIT=off turns it off.
set -euo pipefail
bin=${1:?usage: reverse.sh WAYGATE_BINARY}
: "${LISTEN:?} ${ORIGIN_HTTP:?} ${WORKDIR:?}"
cat > "$WORKDIR/waygate-reverse.yaml" <<YAML
schema_version: 1
data_dir: $WORKDIR/data
log:
  level: warn
proxy:
  listen: "127.0.0.1:0"
admin:
  listen: ""
dns:
  hosts_file: none
  servers: [127.0.0.1]
reverse:
  listen: "$LISTEN"
  compression:
    algorithms: [gzip, zstd, br]
    levels: {gzip: 1}
  routes:
    - name: origin
      backends: [http://$ORIGIN_HTTP]
YAML
if [ "${AUDIT:-on}" = off ]; then
  printf 'audit:\n  enabled: false\n' >> "$WORKDIR/waygate-reverse.yaml"
fi
exec "$bin" serve -config "$WORKDIR/waygate-reverse.yaml"
