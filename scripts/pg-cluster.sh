#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for one test run (see test/helpers/postgres.ts):
#   scripts/pg-cluster.sh start <dir> <port>   prints GS_TEST_PG_URL=postgres://postgres@127.0.0.1:<port>/postgres
#   scripts/pg-cluster.sh stop <dir>
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
WAIT_S=30

usage() {
  echo "usage: $0 start <dir> <port> | stop <dir>" >&2
  exit 2
}

# the server refuses to run as root
as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  local dir=$1 port=$2
  if [ ! -x "$PG_BIN/initdb" ]; then
    echo "PostgreSQL 15 not found: apt-get install -y postgresql" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dir"; fi
  as_postgres "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
  # -l: without a log file the server keeps the caller's stdout open
  as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" \
    -l "$dir/server.log" -w -t "$WAIT_S" start >/dev/null
  echo "GS_TEST_PG_URL=postgres://postgres@127.0.0.1:$port/postgres"
}

stop() {
  local dir=$1
  if [ -d "$dir/data" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t "$WAIT_S" stop >/dev/null || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) [ $# -eq 3 ] || usage; start "$2" "$3" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  *) usage ;;
esac
