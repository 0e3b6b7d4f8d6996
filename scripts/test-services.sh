#!/usr/bin/env bash
# Runs a command with a private PostgreSQL server (and the URL of its admin database in
# TEST_POSTGRES_URL), then stops the server and removes its data. Used by `make test` to run
# the test suite a second time against PostgreSQL.
#
#   scripts/test-services.sh COMMAND [ARG...]
set -euo pipefail

PORT="${TEST_POSTGRES_PORT:-55432}"
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
DIR="$(mktemp -d /tmp/callscope-pg.XXXXXX)"
as_owner=()
if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root: the server runs as the postgres user of the package
    chown postgres: "$DIR"
    as_owner=(runuser -u postgres --)
fi

stop() {
    "${as_owner[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap stop EXIT

"${as_owner[@]}" "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
"${as_owner[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null

TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres" "$@"
