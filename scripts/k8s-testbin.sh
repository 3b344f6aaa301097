#!/usr/bin/env bash
# Builds the control-plane binaries the kubernetes deployer's tests run against:
# kube-apiserver (from k8s.io/kubernetes, with every staging module replaced by
# its published k8s.io/<name> module) and etcd (go.etcd.io/etcd/server/v3).
# No binary release can be downloaded here, but both build from the Go module
# proxy. The result goes to a cache directory outside the checkout, one folder
# per version pair, reused when present and never committed:
#
#   ${XDG_CACHE_HOME:-~/.cache}/certfleet/k8s-testbin/kube-apiserver-v1.37.2_etcd-v3.7.3/
#
#   scripts/k8s-testbin.sh                       # build (or reuse); prints the directory
#   export CERTFLEET_K8S_TESTBIN="$(scripts/k8s-testbin.sh)"
#   go test ./internal/deploy/kubernetes/...
#
# The tests look for the binaries in $CERTFLEET_K8S_TESTBIN, then
# $KUBEBUILDER_ASSETS, then this cache directory; without them the kubernetes
# tests skip (and fail under CI=true, where .ci/run has built them).
# Progress goes to stderr, the directory alone to stdout. A cold build takes
# several minutes on two cores (kube-apiserver is large); GOFLAGS and
# GOTOOLCHAIN from the environment are honoured.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}          # k8s.io/kubernetes
STAGING_VERSION=${STAGING_VERSION:-v0.37.2}  # k8s.io/api, k8s.io/client-go, ...
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}         # go.etcd.io/etcd/server/v3

say() { echo "k8s-testbin: $*" >&2; }

cache=${XDG_CACHE_HOME:-$HOME/.cache}/certfleet/k8s-testbin
out="$cache/kube-apiserver-${K8S_VERSION}_etcd-${ETCD_VERSION}"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$out"
# One build at a time: a second caller waits for the first.
exec 9>"$cache/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ]; then
  echo "$out"
  exit 0
fi

export GOFLAGS="${GOFLAGS:-} -mod=mod"
export CGO_ENABLED=0

# kube-apiserver: a scratch module requiring k8s.io/kubernetes. Its go.mod names
# every staging module as v0.0.0 with a replace to ./staging/src/..., which does
# not apply to a module that depends on it, so the scratch module replaces each
# one with the published module at STAGING_VERSION. The list is read from
# k8s.io/kubernetes's own go.mod, so it stays right for another version.
if [ ! -x "$out/kube-apiserver" ]; then
  src="$cache/src/kube-apiserver-${K8S_VERSION}"
  rm -rf "$src" && mkdir -p "$src" && cd "$src"
  say "kube-apiserver ${K8S_VERSION} (staging modules at ${STAGING_VERSION}) in $src"
  go mod init certfleet.invalid/k8s-testbin >/dev/null 2>&1
  gomod=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -n "$gomod" ] && [ -f "$gomod" ] || { say "cannot download k8s.io/kubernetes@${K8S_VERSION}"; exit 1; }
  staging=$(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod")
  [ -n "$staging" ] || { say "no staging replaces found in $gomod"; exit 1; }
  args=()
  for m in $staging; do args+=("-replace=$m=$m@${STAGING_VERSION}"); done
  go mod edit "${args[@]}"
  # Go version of the main module: at least what k8s.io/kubernetes declares.
  gov=$(awk '$1 == "go" {print $2; exit}' "$gomod")
  [ -n "$gov" ] && go mod edit -go="$gov"
  say "+ go get k8s.io/kubernetes/cmd/kube-apiserver@${K8S_VERSION}"
  go get "k8s.io/kubernetes/cmd/kube-apiserver@${K8S_VERSION}" >&2
  say "+ go build kube-apiserver (several minutes on two cores)"
  # Stamp the version as the release build does (else it reports v0.0.0-master).
  major=${K8S_VERSION#v}; minor=${major#*.}; major=${major%%.*}; minor=${minor%%.*}
  vpkg=k8s.io/component-base/version
  go build -trimpath -ldflags="-s -w -X $vpkg.gitVersion=${K8S_VERSION} -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean" \
    -o "$out/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2
  mv "$out/kube-apiserver.tmp" "$out/kube-apiserver"
fi

# etcd: its server module has the etcd command as a main package; a scratch
# module of its own so its dependency versions are etcd's, not kubernetes's.
if [ ! -x "$out/etcd" ]; then
  src="$cache/src/etcd-${ETCD_VERSION}"
  rm -rf "$src" && mkdir -p "$src" && cd "$src"
  say "etcd ${ETCD_VERSION} in $src"
  go mod init certfleet.invalid/k8s-testbin-etcd >/dev/null 2>&1
  gomod=$(go mod download -json "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  gov=$(awk '$1 == "go" {print $2; exit}' "$gomod")
  [ -n "$gov" ] && go mod edit -go="$gov"
  dir=$(go mod download -json "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -f "$dir/main.go" ]; then
    pkg=go.etcd.io/etcd/server/v3
  else
    # Older layouts: a two-line main calling etcdmain.Main.
    printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' >main.go
    pkg=.
  fi
  say "+ go get go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
  if [ "$pkg" = . ]; then
    go get "go.etcd.io/etcd/server/v3/etcdmain@${ETCD_VERSION}" >&2
  else
    go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >&2
  fi
  say "+ go build etcd"
  go build -trimpath -ldflags="-s -w" -o "$out/etcd.tmp" "$pkg" >&2
  mv "$out/etcd.tmp" "$out/etcd"
fi

"$out/kube-apiserver" --version >&2
"$out/etcd" --version | head -n2 >&2 || true
echo "$out"
