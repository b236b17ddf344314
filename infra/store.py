"""Builds the TicketDesk on the configured event store: a SQLite file by default, PostgreSQL by setting."""

from __future__ import annotations

import random
import time

import psycopg
from eventsourcing.persistence import PersistenceError

from domain.desk import TicketDesk
from domain.policy import PolicyBook
from infra.files import private_file
from infra.policy_files import load_policy
from infra.settings import Settings

START_ATTEMPTS = 5


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
    private_file(path)  # owner-only before SQLite opens it; its -wal and -shm files take the same mode
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path), "SQLITE_LOCK_TIMEOUT": "10"}


def build_desk(settings: Settings, policies: PolicyBook | None = None) -> TicketDesk:
    """The write side, on the store and policy the settings name.

    Creating the desk creates its tables and, on PostgreSQL, replaces its database functions; two components
    starting at once can collide there ("tuple concurrently updated"), so a failed start is tried again.
    """
    book = policies or load_policy(settings.policy_file)
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return TicketDesk(book, env=store_env(settings))
        except (PersistenceError, psycopg.Error):
            if attempt == START_ATTEMPTS:
                raise
            time.sleep(random.uniform(0.05, 0.5))
    raise AssertionError("unreachable")
