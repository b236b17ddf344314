"""Builds the intake's parking lot in the event store's database: the SQLite file, or the PostgreSQL schema."""

from __future__ import annotations

import sqlite3

import psycopg

from consumers.parking import ParkingLot
from infra.settings import Settings

# A parked command is looked up once per batch; a lost connection must fail fast, the intake then retries.
POSTGRES_CONNECT_TIMEOUT_S = 5


def build_parking_lot(settings: Settings) -> ParkingLot:
    if settings.store == "postgres":
        dsn = settings.postgres_dsn()
        table = f"{settings.postgres_schema}.nettask_parked_commands"
        connect = lambda: psycopg.connect(dsn, connect_timeout=POSTGRES_CONNECT_TIMEOUT_S)  # noqa: E731
        return ParkingLot(connect, table, postgres=True, errors=(psycopg.Error,))
    path = str(settings.sqlite_file())
    # Waits for the event store's writer rather than failing at once: both write the same file.
    return ParkingLot(lambda: sqlite3.connect(path, timeout=10, check_same_thread=False))
