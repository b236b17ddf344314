"""The event store adapter: the library's settings for a SQLite file or PostgreSQL, its outages, how to name it."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from eventsourcing.persistence import InterfaceError, OperationalError

from infra.files import private_file
from infra.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")
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
