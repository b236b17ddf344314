"""infra/scripts/postgres-up.sh: names and passwords with quotes are data, never shell or SQL; it is idempotent."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.postgres

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "scripts" / "postgres-up.sh"
AS_POSTGRES = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def run_script(user: str, password: str, dbname: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NETTASK_POSTGRES_USER": user,
        "NETTASK_POSTGRES_PASSWORD": password,
        "NETTASK_POSTGRES_DBNAME": dbname,
    }
    return subprocess.run([SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=False)


def as_superuser(sql: str, **variables: str) -> str:
    """Run `sql` through psql as the postgres superuser, the values passed as psql variables."""
    options = [arg for name, value in variables.items() for arg in ("-v", f"{name}={value}")]
    result = subprocess.run(
        [*AS_POSTGRES, "psql", "-X", "-qtA", "-v", "ON_ERROR_STOP=1", *options], input=sql, capture_output=True,
        text=True, timeout=60, check=True, cwd="/",
    )  # fmt: skip
    return result.stdout.strip()


@pytest.fixture
def hostile_names() -> Iterator[tuple[str, str, str]]:
    """A role, password and database name with quotes and SQL in them; dropped afterwards whatever happened."""
    suffix = uuid.uuid4().hex[:8]
    user = f"test_o'brien_{suffix}"
    password = "it's; DROP ROLE nettask; --"
    dbname = f'test_db"; DROP DATABASE nettask; --_{suffix}'
    yield user, password, dbname
    as_superuser('DROP DATABASE IF EXISTS :"dbname";\nDROP ROLE IF EXISTS :"user";\n', user=user, dbname=dbname)


def test_quotes_in_user_password_and_database_name_are_taken_literally(hostile_names):
    user, password, dbname = hostile_names

    first = run_script(user, password, dbname)
    again = run_script(user, password, dbname)

    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert as_superuser("SELECT count(*) FROM pg_roles WHERE rolname = :'user';\n", user=user) == "1"
    owner = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :'dbname';\n"
    assert as_superuser(owner, dbname=dbname) == user
    with psycopg.connect(host="127.0.0.1", user=user, password=password, dbname=dbname, connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == (user, dbname)
    # What the names tried to inject did not run.
    assert as_superuser("SELECT count(*) FROM pg_roles WHERE rolname = 'nettask';\n") == "1"
    assert as_superuser("SELECT count(*) FROM pg_database WHERE datname = 'nettask';\n") == "1"


def test_the_default_role_and_database_still_come_up():
    env = {name: value for name, value in os.environ.items() if not name.startswith("NETTASK_POSTGRES_")}

    result = subprocess.run([SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 0, result.stderr
    assert "PostgreSQL ready: nettask@127.0.0.1/nettask" in result.stdout
