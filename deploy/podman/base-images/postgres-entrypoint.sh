#!/bin/sh
# Entry point of the postgres stand-in image (postgres.Containerfile): the subset of
# the official image's docker-entrypoint.sh that Nova's compose file uses.
#   POSTGRES_PASSWORD  password of POSTGRES_USER (required, or POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER      superuser created by initdb [postgres]
#   POSTGRES_DB        database created on first start [$POSTGRES_USER]
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for TCP clients [scram-sha-256]
#   PGDATA             data directory [/var/lib/postgresql/data]
#   PGPORT             port (postgres, psql and pg_isready all read it) [5432]
# `postgres ARGS…` (or just `-c …` flags) runs the server with ARGS; anything else runs as given.
set -eu

fail() { echo "postgres stand-in: $*" >&2; exit 1; }

case ${1:-postgres} in
  -*) set -- postgres "$@" ;;
esac
[ $# -gt 0 ] || set -- postgres
[ "$1" = postgres ] || exec "$@"
shift

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  method=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$method" != trust ]; then
    fail "POSTGRES_PASSWORD is not set (or set POSTGRES_HOST_AUTH_METHOD=trust)"
  fi
  pwfile=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
  initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host="$method" >/dev/null
  rm -f "$pwfile"
  printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
  printf 'host all all all %s\n' "$method" >> "$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    # The set-up server listens on a private socket only, so neither pg_isready (a
    # healthcheck) nor a client mistakes it for the real one.
    sockets=$(mktemp -d)
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k $sockets" -w start >/dev/null
    psql -h "$sockets" -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres -q \
      -c "CREATE DATABASE \"$db\"" >/dev/null
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    rmdir "$sockets"
  fi
  echo "postgres stand-in: initialised $PGDATA (user $user, database $db)" >&2
fi
exec postgres -D "$PGDATA" "$@"
