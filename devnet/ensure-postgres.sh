#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers at the URL the tests and the demo use.
#
# Order: a server already answering is used as it is; an installed cluster that is
# stopped is started; otherwise Debian's postgresql package is installed and its
# cluster started (trust auth on 127.0.0.1 for the local `postgres` user, as the
# tests expect). Prints the URL it checked. Idempotent.
set -euo pipefail

HOST="${PGHOST_ISTHMUS:-127.0.0.1}"
PORT="${PGPORT_ISTHMUS:-5432}"

answers() { pg_isready -q -h "$HOST" -p "$PORT" -U postgres 2>/dev/null; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if command -v pg_isready >/dev/null && answers; then
  echo "postgres: answering on $HOST:$PORT"
  exit 0
fi

if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  echo "postgres: no server installed; installing Debian's postgresql"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql postgresql-client >/dev/null
fi

version="$(ls /etc/postgresql | sort -V | tail -n1)"
conf="/etc/postgresql/$version/main"
# Local trust auth for the tests' `postgres` user on loopback, as on these machines.
if ! grep -Eq '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$conf/pg_hba.conf"; then
  as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
fi
echo "postgres: starting cluster $version/main"
as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true

for _ in $(seq 1 60); do
  if answers; then
    echo "postgres: answering on $HOST:$PORT"
    exit 0
  fi
  sleep 0.5
done
echo "postgres: no server answers on $HOST:$PORT after starting cluster $version/main;" \
     "see /var/log/postgresql/postgresql-$version-main.log" >&2
exit 1
