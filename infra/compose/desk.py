"""Builds the TicketDesk, the write side, on the event store and the policy the settings name."""

from __future__ import annotations

import random
import time

import psycopg
from eventsourcing.persistence import PersistenceError

from domain.desk import TicketDesk
from domain.policy import PolicyBook
from infra.policy_files import load_policy
from infra.retry import Unavailable, one_line
from infra.settings import Settings
from infra.store import describe_store, store_env

# Two components starting at once can collide creating the store's tables and functions: a few tries each.
START_ATTEMPTS = 5


def build_desk(settings: Settings, policies: PolicyBook | None = None) -> TicketDesk:
    """The write side, on the store and policy the settings name; `Unavailable` in one line when it can't be.

    1. On PostgreSQL, one connection bounded by the connect timeout: an unreachable server fails here, fast,
       with libpq's reason (refused, timed out, authentication) rather than a pool timeout that names no host.
    2. Create the desk. That creates its tables and, on PostgreSQL, replaces its database functions; two
       components starting at once can collide there ("tuple concurrently updated"), so a failed start is
       tried again a few times.
    """
    book = policies or load_policy(settings.policy_file)
    if settings.store == "postgres":
        _probe_postgres(settings)
    try:
        env = store_env(settings)
    except OSError as error:  # the SQLite file's folder cannot be made
        raise Unavailable(f"{describe_store(settings)}: {error.strerror or error}: {error.filename}") from None
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return TicketDesk(book, env=env)
        except (PersistenceError, psycopg.Error) as error:
            if attempt == START_ATTEMPTS:
                raise Unavailable(f"{describe_store(settings)}: {one_line(error)}") from error
            time.sleep(random.uniform(0.05, 0.5))
    raise AssertionError("unreachable")


def _probe_postgres(settings: Settings) -> None:
    try:
        psycopg.connect(settings.postgres_dsn(), connect_timeout=settings.postgres_connect_timeout_s).close()
    except psycopg.Error as error:
        raise Unavailable(f"{describe_store(settings)} is unreachable: {_libpq_reason(error)}") from None


def _libpq_reason(error: psycopg.Error) -> str:
    """libpq's reason without the address it repeats: 'connection to server at "h", port p failed: X' -> X."""
    line = one_line(error)
    return line.rsplit(" failed: ", 1)[-1]
