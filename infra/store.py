"""Builds the TicketDesk on the configured event store: a SQLite file by default, PostgreSQL by setting."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError

from domain.desk import TicketDesk
from domain.policy import PolicyBook
from infra.files import private_file
from infra.policy_files import load_policy
from infra.retry import Unavailable, one_line
from infra.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")
START_ATTEMPTS = 5
# What a lost or refused connection (or a locked SQLite file) raises through eventsourcing: worth a retry.
STORE_OUTAGES: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)


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
            # How long taking a connection from the pool may wait (library default 30 s): a server that is down
            # fails the read or write within this, and the caller's retry reports it.
            "POSTGRES_CONNECT_TIMEOUT": str(settings.postgres_connect_timeout_s),
            # After a server restart every pooled connection is dead; checking one before handing it out replaces
            # it instead of failing the next statement on it.
            "POSTGRES_PRE_PING": "y",
        }
    path = settings.sqlite_file()
    private_file(path)  # owner-only before SQLite opens it; its -wal and -shm files take the same mode
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path), "SQLITE_LOCK_TIMEOUT": "10"}


def without_library_retries(method: Callable[P, R]) -> Callable[P, R]:
    """The bound recorder method without eventsourcing's own retry decorator, where it has one.

    The PostgreSQL recorders try every call 10 times on a connection error, silently, each try waiting up to the
    connect timeout for a connection: a server that is away is not reported for 10 times that long. Callers
    with a retry of their own (one log line per attempt) call the undecorated method instead.
    """
    function = getattr(method, "__func__", None)
    inner = getattr(function, "__wrapped__", None)  # set by functools.wraps in the library's decorator
    if inner is None:
        return method
    return inner.__get__(method.__self__)  # type: ignore[attr-defined]


def describe_store(settings: Settings) -> str:
    """The store as an operator finds it: host, port and database, or the file."""
    if settings.store == "postgres":
        return f"PostgreSQL at {settings.postgres_host}:{settings.postgres_port} (database {settings.postgres_dbname})"
    return f"the SQLite event store {settings.sqlite_file()}"


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
