#!/usr/bin/env bash
# A throwaway PostgreSQL for certfleet's tests, touching no system service:
# its own cluster (initdb) in a private directory, listening on 127.0.0.1 only
# (port 5432 when free, else the next free one), trust auth for user postgres.
#
#   scripts/dev-postgres.sh          # start (or reuse) it; prints the export line
#   eval "$(scripts/dev-postgres.sh)" && go test -count=1 ./...
#   scripts/dev-postgres.sh stop     # stop it and delete its directory
#
# Runs as the current user; as root, as the "postgres" user (initdb refuses
# root). The directory is $CERTFLEET_DEV_PG_DIR, default
# ${XDG_CACHE_HOME:-~/.cache}/certfleet/dev-postgres (as root: /tmp/certfleet-dev-postgres).
# Needs PostgreSQL's server programs (initdb, pg_ctl): e.g. apt-get install
# postgresql (then stop the cluster the package started, if you do not want it),
# or brew install postgresql. Progress goes to stderr, the export line to stdout.
set -euo pipefail

say() { echo "dev-postgres: $*" >&2; }

if [ "$(id -u)" = 0 ]; then
  dir=${CERTFLEET_DEV_PG_DIR:-/tmp/certfleet-dev-postgres}
  as() { runuser -u postgres -- "$@"; }
else
  dir=${CERTFLEET_DEV_PG_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/certfleet/dev-postgres}
  as() { "$@"; }
fi

bin=
for d in "$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)")" /usr/lib/postgresql/*/bin /usr/local/opt/postgresql*/bin /opt/homebrew/opt/postgresql*/bin; do
  if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then bin=$d; break; fi
done
if [ -z "$bin" ]; then
  say "initdb and pg_ctl not found: install PostgreSQL's server programs (apt-get install postgresql, brew install postgresql)"
  exit 1
fi

if [ "${1:-start}" = stop ]; then
  if [ -f "$dir/data/postmaster.pid" ]; then
    say "+ pg_ctl -D $dir/data stop"
    as "$bin/pg_ctl" -D "$dir/data" -m fast stop >&2
  fi
  say "+ rm -rf $dir"
  rm -rf "$dir"
  exit 0
fi

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -f "$dir/port" ] && as "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  port=$(cat "$dir/port")
  say "already running on 127.0.0.1:$port ($dir)"
else
  port=5432
  while ! port_free "$port"; do port=$((port + 1)); done
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    chmod 0700 "$dir"
    say "+ initdb -D $dir/data --auth=trust -U postgres"
    as "$bin/initdb" -D "$dir/data" --auth=trust -U postgres --encoding=UTF8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  echo "$port" | as tee "$dir/port" >/dev/null
  say "+ pg_ctl -D $dir/data start (127.0.0.1:$port, log $dir/postgres.log)"
  as "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=400 -c fsync=off" start >&2
fi
echo "export CERTFLEET_TEST_POSTGRES='postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable'"
