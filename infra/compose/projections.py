"""Builds the projections' database from settings: a SQLite file next to the event store, or a PostgreSQL schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from infra.files import private_file
from infra.retry import Unavailable, one_line
from infra.settings import Settings
from projections.database import ProjectionDatabase

# A batch and its offsets wait this long for the SQLite write lock (a reader's checkpoint, another projector).
SQLITE_LOCK_TIMEOUT_S = 10


def build_projection_database(settings: Settings) -> ProjectionDatabase:
    """The database; `Unavailable` in one line when PostgreSQL cannot be reached or the file cannot be made."""
    if settings.projections_backend() == "postgres":
        return _postgres(settings)
    try:
        path = private_file(settings.projections_sqlite_file())
    except OSError as error:
        raise Unavailable(f"{describe_projections(settings)}: {error.strerror or error}") from None
    return ProjectionDatabase(lambda: _sqlite(path))


def describe_projections(settings: Settings) -> str:
    if settings.projections_backend() == "postgres":
        return (
            f"PostgreSQL at {settings.postgres_host}:{settings.postgres_port} (database {settings.postgres_dbname}, "
            f"schema {settings.projections_schema()})"
        )
    return f"the SQLite projections file {settings.projections_sqlite_file()}"


def _postgres(settings: Settings) -> ProjectionDatabase:
    dsn, timeout = settings.postgres_dsn(), settings.postgres_connect_timeout_s

    def connect() -> psycopg.Connection:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=timeout)

    try:
        connect().close()  # an unreachable server is reported now, in one line, not at the first batch
    except psycopg.Error as error:
        raise Unavailable(f"{describe_projections(settings)} is unreachable: {one_line(error)}") from None
    return ProjectionDatabase(connect, postgres=True, schema=settings.projections_schema(), errors=(psycopg.Error,))


def _sqlite(path: Path) -> sqlite3.Connection:
    # Autocommit: the database class begins each transaction itself (BEGIN IMMEDIATE for a batch).
    connection = sqlite3.connect(path, timeout=SQLITE_LOCK_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    # WAL: analysts' queries read a snapshot and never block the projector's writes, nor it theirs.
    connection.execute("PRAGMA journal_mode=WAL")
    # No sync per commit: WAL keeps the file whole through any crash, and a power cut can only take the last
    # commits away, rows and offsets together, so the projector reads those batches again from Kafka.
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def build_scratch_database(path: Path) -> ProjectionDatabase:
    """A throw-away SQLite file of projection tables (a rebuild worker's part), made afresh: no journal to keep,
    no syncs, since a crash discards it anyway."""
    path.unlink(missing_ok=True)
    private_file(path)

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=MEMORY")  # a rollback still works: the batch's failure is reported
        connection.execute("PRAGMA synchronous=OFF")
        return connection

    return ProjectionDatabase(connect)
