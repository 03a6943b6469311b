#!/bin/sh
# First start: initialise $PGDATA with superuser $POSTGRES_USER/$POSTGRES_PASSWORD (from the
# environment, never the image) and create $POSTGRES_DATABASES. Then run postgres in the
# foreground, password-authenticated from the container network.
set -eu
user="${POSTGRES_USER:-churnops}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -k /tmp" start >/dev/null
  for db in ${POSTGRES_DATABASES:-}; do
    psql -h /tmp -U "$user" -d postgres -q -c "CREATE DATABASE \"$db\""
  done
  pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -k /tmp
