#!/usr/bin/env sh
# Build certfleet's release: static binaries for each target, one CycloneDX
# SBOM per binary, and SHA256SUMS, into DIST_DIR (default ./dist).
#
#   scripts/dist.sh                       # every target below
#   scripts/dist.sh linux/amd64           # only these targets
#   DIST_DIR=/tmp/out VERSION=v1.0.0 scripts/dist.sh
#
# VERSION defaults to `git describe --tags --always --dirty`, COMMIT to HEAD
# and DATE to the commit's date (so a rebuild of one commit is identical).
# Needs only Go (and git for the defaults). Prints each step it runs.
set -eu
cd "$(dirname "$0")/.."

DIST_DIR=${DIST_DIR:-dist}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
DATE=${DATE:-$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)}
TARGETS=${*:-linux/amd64 linux/arm64 darwin/arm64 windows/amd64}

# -X sets main.version, main.commit and main.date (cmd/certfleet/version.go);
# -s -w drop the symbol table and DWARF; -trimpath drops local paths.
LDFLAGS="-s -w -X main.version=$VERSION -X main.commit=$COMMIT -X main.date=$DATE"

mkdir -p "$DIST_DIR"
# The helper runs on this machine, so it is built for it, once.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tool="$tmp/release"
echo "+ go build -o $tool ./scripts/release"
go build -o "$tool" ./scripts/release

for target in $TARGETS; do
  goos=${target%/*}
  goarch=${target#*/}
  ext=
  [ "$goos" = windows ] && ext=.exe
  out="$DIST_DIR/certfleet_${VERSION}_${goos}_${goarch}$ext"
  echo "+ CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -ldflags '$LDFLAGS' -o $out ./cmd/certfleet"
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -ldflags "$LDFLAGS" -o "$out" ./cmd/certfleet
  echo "+ release sbom $out > $out.cdx.json"
  "$tool" sbom "$out" > "$out.cdx.json"
done

echo "+ release sums $DIST_DIR"
"$tool" sums "$DIST_DIR"
echo "release $VERSION in $DIST_DIR:"
ls -l "$DIST_DIR"
