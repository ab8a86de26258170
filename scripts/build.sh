#!/usr/bin/env bash
# Builds the release binary: scripts/build.sh [OUTPUT] (default ./waygate).
# The same code as `go build ./cmd/waygate`, with two switches:
#   -tags nomsgpack  leaves out Gin's MessagePack binding and renderer, which
#                    Waygate never uses (about 6 MB less code, 5 MiB less
#                    resident memory);
#   -trimpath        no build machine paths in the binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-waygate}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$root"
exec go build -tags nomsgpack -trimpath -o "$out" ./cmd/waygate
