#!/usr/bin/env bash
# Runs a command with PostgreSQL and Redis available, then exits with the command's status.
#
# Uses the servers already listening on 127.0.0.1 (5432 and 6379) when there are any; otherwise
# starts throwaway ones from the installed binaries on free ports, and stops them afterwards.
# TEST_SERVICES=throwaway always starts private ones (isolation from whatever else runs here).
set -uo pipefail
throwaway_only=$([ "${TEST_SERVICES:-}" = throwaway ] && echo 1 || echo "")
cd "$(dirname "$0")/.."

scratch=$(mktemp -d /tmp/kcp-services.XXXXXX)
chmod 755 "$scratch"
cleanup() {
  [ -n "${pg_started:-}" ] && run_as_pg "$pg_bin/pg_ctl" -D "$scratch/pg" -m immediate stop >/dev/null 2>&1
  [ -n "${redis_started:-}" ] && redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1
  rm -rf "$scratch"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_as_pg() {
  # initdb and postgres refuse to run as root.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ -z "${DATABASE_URL:-}" ]; then
  if [ -z "$throwaway_only" ] && (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
  else
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
    if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
      echo "error: PostgreSQL is not running on 127.0.0.1:5432 and no server binaries were found" >&2
      echo "       (on Debian: apt-get install postgresql)" >&2
      exit 2
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
      echo "error: running as root but there is no 'postgres' user to run a throwaway server" >&2
      exit 2
    fi
    pg_port=$(free_port)
    [ "$(id -u)" = 0 ] && chown postgres "$scratch"
    run_as_pg "$pg_bin/initdb" -D "$scratch/pg" -U postgres --auth=trust >/dev/null || exit 2
    run_as_pg "$pg_bin/pg_ctl" -D "$scratch/pg" -l "$scratch/pg.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $scratch" start >/dev/null || {
        cat "$scratch/pg.log" >&2; exit 2; }
    pg_started=1
    export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
    echo "started a throwaway PostgreSQL on port $pg_port"
  fi
fi

if [ -z "${REDIS_URL:-}" ]; then
  if [ -z "$throwaway_only" ] && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    export REDIS_URL="redis://127.0.0.1:6379/15"
  else
    if ! command -v redis-server >/dev/null 2>&1; then
      echo "error: Redis is not running on 127.0.0.1:6379 and redis-server is not installed" >&2
      echo "       (on Debian: apt-get install redis-server)" >&2
      exit 2
    fi
    redis_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
      --dir "$scratch" --logfile "$scratch/redis.log" || exit 2
    for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis_started=1
    export REDIS_URL="redis://127.0.0.1:$redis_port/15"
    echo "started a throwaway Redis on port $redis_port"
  fi
fi

export CONTROLPLANE_VAR_DIR="${CONTROLPLANE_VAR_DIR:-$scratch/var}"
"$@"
