"""Builds the TicketDesk on the configured event store: a SQLite file by default, PostgreSQL by setting."""

from __future__ import annotations

from domain.desk import TicketDesk
from domain.policy import PolicyBook
from infra.policy_files import load_policy
from infra.settings import Settings


def store_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment for the configured store."""
    if settings.store == "postgres":
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": settings.postgres_dbname,
            "POSTGRES_HOST": settings.postgres_host,
            "POSTGRES_PORT": str(settings.postgres_port),
            "POSTGRES_USER": settings.postgres_user,
            "POSTGRES_PASSWORD": settings.postgres_password,
            "POSTGRES_SCHEMA": settings.postgres_schema,
            "POSTGRES_LOCK_TIMEOUT": "5",
        }
    path = settings.sqlite_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path), "SQLITE_LOCK_TIMEOUT": "10"}


def build_desk(settings: Settings, policies: PolicyBook | None = None) -> TicketDesk:
    """The write side, on the store and policy the settings name."""
    return TicketDesk(policies or load_policy(settings.policy_file), env=store_env(settings))
