#!/usr/bin/env bash
# Installs pebble and pebble-challtestsrv v2.10.3 (the ACME test server and its
# DNS/management companion) into a cache directory outside the checkout:
# ${XDG_CACHE_HOME:-$HOME/.cache}/certfleet/pebble-v2.10.3. Quick when present.
# The tests find them there (internal/testutil/pebble), or through
# CERTFLEET_PEBBLE_DIR, or on PATH.
set -euo pipefail
version=v2.10.3
dir="${CERTFLEET_PEBBLE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/certfleet/pebble-$version}"
if [ -x "$dir/pebble" ] && [ -x "$dir/pebble-challtestsrv" ]; then
  echo "pebble $version: $dir"
  exit 0
fi
mkdir -p "$dir"
GOBIN="$dir" GOFLAGS=-buildvcs=false go install "github.com/letsencrypt/pebble/v2/cmd/pebble@$version" \
  "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@$version"
echo "pebble $version installed: $dir"
