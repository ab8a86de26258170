#!/usr/bin/env bash
# Runs waygate as the forward proxy for ../shared/bench/peers.sh:
#   PROJECT_FWD_CMD='scripts/bench/forward.sh /path/to/waygate' peers.sh
# peers.sh sets LISTEN, ORIGIN_HTTP, ORIGIN_HTTPS and WORKDIR. The config lets
# loopback clients reach the loopback origin (the guard denies loopback by
# default) and allows CONNECT to the HTTPS origin's port.
#
# POLICY=ut1 adds the whole UT1 category database (UT1_DIR, by default
# ../shared/data/ut1 beside the checkout) with a realistic rule set, so the
# policy engine decides every request; the origin is in no list, so requests
# pass.
#
# The audit trail is on (data_dir in WORKDIR), as for the peers' access
# logs; AUDIT=off turns it off for an A/B comparison.
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
if [ "${AUDIT:-on}" = off ]; then
  printf 'audit:\n  enabled: false\n' >> "$WORKDIR/waygate-forward.yaml"
fi
if [ "${POLICY:-}" = ut1 ]; then
  ut1=${UT1_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/data/ut1}
  cat >> "$WORKDIR/waygate-forward.yaml" <<YAML
category_dirs:
  - path: $ut1
groups:
  - name: staff
    clients: [10.0.0.0/8]
rules:
  - name: security
    categories: [malware, phishing, cryptojacking, ddos, stalkerware]
    action: block
  - name: adult
    categories: [adult, mixed_adult, lingerie, dating]
    action: block
  - name: gambling
    categories: [gambling]
    action: warn
  - name: social-office-hours
    categories: [social_networks]
    action: block
    schedule:
      - {days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00", time_zone: Europe/Paris}
  - name: staff-games
    groups: [staff]
    categories: [games]
    action: allow
  - name: games
    categories: [games]
    action: monitor
YAML
fi
exec "$bin" serve -config "$WORKDIR/waygate-forward.yaml"
