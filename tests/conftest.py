"""Fixtures shared by every tier: the shipped policy, and event stores on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from domain.policy import PolicyBook, parse_policy
from infra.settings import Settings

POLICY_FILE = Path(__file__).resolve().parents[1] / "domain" / "data" / "policy.toml"


@pytest.fixture(scope="session")
def policy_book() -> PolicyBook:
    return parse_policy(POLICY_FILE.read_text(), str(POLICY_FILE))


def _postgres_settings(schema: str) -> Settings:
    return Settings(store="postgres", postgres_schema=schema)


@pytest.fixture
def postgres_settings() -> Iterator[Settings]:
    """Settings for a fresh schema in the project's PostgreSQL database; fails (never skips) if it is down."""
    settings = _postgres_settings(f"test_{uuid.uuid4().hex[:12]}")
    dsn = settings.postgres_dsn()
    try:
        connection = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required (run infra/scripts/postgres-up.sh): {exc}")
    with connection:
        connection.execute(f'CREATE SCHEMA "{settings.postgres_schema}"')
        yield settings
        connection.execute(f'DROP SCHEMA "{settings.postgres_schema}" CASCADE')


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(store="sqlite", sqlite_path=tmp_path / "events.sqlite", var_dir=tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request: pytest.FixtureRequest) -> Settings:
    """The same test on both stores."""
    return request.getfixturevalue(f"{request.param}_settings")
