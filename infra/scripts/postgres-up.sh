#!/usr/bin/env bash
# Start the machine's PostgreSQL 15 and make sure the project's role and database exist.
# Idempotent. Fails loudly (exit 1) when PostgreSQL cannot start: tests must not silently skip it.
set -euo pipefail
user="${NETTASK_POSTGRES_USER:-nettask}"
password="${NETTASK_POSTGRES_PASSWORD:-nettask}"
dbname="${NETTASK_POSTGRES_DBNAME:-nettask}"

if command -v pg_ctlcluster >/dev/null 2>&1; then
  pg_ctlcluster 15 main start 2>/dev/null || pg_ctlcluster 15 main status >/dev/null
fi
for _ in $(seq 1 30); do
  pg_isready -h 127.0.0.1 -q && break
  sleep 0.5
done
pg_isready -h 127.0.0.1 || { echo "PostgreSQL is not answering on 127.0.0.1" >&2; exit 1; }

as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -c "$1"; else sh -c "$1"; fi; }
as_postgres "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='$user'\"" | grep -q 1 \
  || as_postgres "psql -qc \"CREATE ROLE $user LOGIN CREATEDB PASSWORD '$password'\""
as_postgres "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='$dbname'\"" | grep -q 1 \
  || as_postgres "psql -qc \"CREATE DATABASE $dbname OWNER $user\""
echo "PostgreSQL ready: $user@127.0.0.1/$dbname"
