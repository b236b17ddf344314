"""Builds the intake's parking lot in the event store's database: the SQLite file, or the PostgreSQL schema."""

from __future__ import annotations

import sqlite3

import psycopg

from consumers.parking import ParkingLot
from infra.settings import Settings


def build_parking_lot(settings: Settings) -> ParkingLot:
    if settings.store == "postgres":
        dsn, timeout = settings.postgres_dsn(), settings.postgres_connect_timeout_s
        table = f"{settings.postgres_schema}.nettask_parked_commands"
        # A lost connection fails fast, like the store's: the intake then retries the batch.
        connect = lambda: psycopg.connect(dsn, connect_timeout=timeout)  # noqa: E731
        return ParkingLot(connect, table, postgres=True, errors=(psycopg.Error,))
    path = str(settings.sqlite_file())
    # Waits for the event store's writer rather than failing at once: both write the same file.
    return ParkingLot(lambda: sqlite3.connect(path, timeout=10, check_same_thread=False))
