#!/usr/bin/env bash
# A throwaway PostgreSQL server for the read-model tests: `make pytest` runs the API and
# read-model tests once more against it.
#
#   bash .ci/postgres.sh start   # installs Debian's postgresql if missing, starts a cluster under
#                                # ./var/pg on 127.0.0.1 and a free port, prints its admin URL
#   bash .ci/postgres.sh url     # prints the admin URL of the running cluster
#   bash .ci/postgres.sh stop    # stops it (the cluster's files stay for the next start)
#
# The URL (superuser `onething`, trust authentication, database `postgres`) is what
# ONETHING_TEST_POSTGRES_URL expects: tests/conftest.py makes one database per test in it.
# Root can't run postgres, so as root the cluster belongs to Debian's `postgres` user.
# Only the URL goes to stdout; everything else goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE_DIR="$PWD/var/pg"
SUPERUSER=onething

say() { echo "postgres.sh: $*" >&2; }

pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/pg_ctl" ] && echo "$dir"
}

install_postgres() {
    if pg_bin >/dev/null; then return; fi
    if [ "$(id -u)" != 0 ]; then
        say "PostgreSQL is missing: run 'sudo apt-get install postgresql'"
        exit 1
    fi
    say "installing Debian's postgresql"
    # Only our own cluster is wanted: no system-wide 'main' cluster or service.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/onething.conf
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq postgresql >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }
    pg_bin >/dev/null || { say "PostgreSQL did not install"; exit 1; }
}

# Commands that touch the cluster run as its owner: `postgres` when we are root (from /,
# which it can always enter).
as_owner() {
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# The data directory: ./var/pg/data, unless the owner can't reach it (e.g. a clone under
# /root): then /tmp/onething-pg-*/data. The server's log is written beside it.
data_dir() {
    if [ -f "$STATE_DIR/datadir" ] && [ -d "$(cat "$STATE_DIR/datadir")" ]; then
        cat "$STATE_DIR/datadir"
        return
    fi
    local dir="$STATE_DIR/data"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$dir"
        if ! as_owner test -w "$dir"; then
            rmdir "$dir"
            dir="$(mktemp -d /tmp/onething-pg-XXXXXX)/data"
            mkdir "$dir"
            chown postgres: "$dir" "$(dirname "$dir")"
        fi
    fi
    chmod 700 "$dir"
    echo "$dir" >"$STATE_DIR/datadir"
    echo "$dir"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

running() {
    local bin="$1" data="$2"
    [ -f "$data/PG_VERSION" ] && as_owner "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1
}

start() {
    install_postgres
    local bin data port log
    bin=$(pg_bin)
    mkdir -p "$STATE_DIR"
    data=$(data_dir)
    log="$(dirname "$data")/server.log"
    if running "$bin" "$data" && [ -f "$STATE_DIR/url" ]; then
        cat "$STATE_DIR/url"
        return
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        say "initdb $data"
        as_owner "$bin/initdb" -D "$data" -U "$SUPERUSER" --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
            >"$STATE_DIR/initdb.log" 2>&1 || { cat "$STATE_DIR/initdb.log" >&2; exit 1; }
    fi
    port=$(free_port)
    touch "$log"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$log"; fi
    # TCP on loopback only, no Unix socket; durability off: the data is thrown away.
    as_owner "$bin/pg_ctl" start -D "$data" -w -t 60 -l "$log" -o "-h 127.0.0.1 -p $port -k '' \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null ||
        { tail -n 20 "$log" >&2; exit 1; }
    for _ in $(seq 1 60); do
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
        sleep 0.5
    done
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" || { say "server not ready"; tail -n 20 "$log" >&2; exit 1; }
    echo "postgresql://$SUPERUSER@127.0.0.1:$port/postgres" | tee "$STATE_DIR/url"
    say "$("$bin/postgres" --version) on 127.0.0.1:$port (data $data)"
}

stop() {
    local bin data
    bin=$(pg_bin) || return 0
    [ -f "$STATE_DIR/datadir" ] || return 0
    data=$(cat "$STATE_DIR/datadir")
    if running "$bin" "$data"; then
        as_owner "$bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null
        say "stopped"
    fi
    rm -f "$STATE_DIR/url"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) cat "$STATE_DIR/url" 2>/dev/null || { say "not running: bash .ci/postgres.sh start"; exit 1; } ;;
    *) echo "usage: bash .ci/postgres.sh start|stop|url" >&2; exit 2 ;;
esac
