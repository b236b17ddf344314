#!/usr/bin/env bash
# Start the machine's PostgreSQL 15 and make sure the project's role and database exist.
# Idempotent. Fails loudly (exit 1) when PostgreSQL cannot start: tests must not silently skip it.
# User, password and database name reach psql as variables only, quoted there by :'var' and format(%I, %L):
# never pasted into a shell string or into SQL text, so a quote in them is just a character.
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

# As the postgres superuser when root (argument arrays, no shell in between), else as the caller.
as_postgres=()
if [ "$(id -u)" = 0 ]; then
  as_postgres=(runuser -u postgres --)
fi

# psql expands :'var' only in SQL it reads (stdin), not in -c. \gexec runs each row of the query's result,
# an already quoted statement, so the CREATE happens only when the role or database is missing.
cd /  # the postgres user may not read the caller's directory
"${as_postgres[@]}" psql -X -q -v ON_ERROR_STOP=1 \
  -v user="$user" -v password="$password" -v dbname="$dbname" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'dbname', :'user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dbname') \gexec
SQL
printf 'PostgreSQL ready: %s@127.0.0.1/%s\n' "$user" "$dbname"
