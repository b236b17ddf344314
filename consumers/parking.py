"""The parking lot: commands that wait for a fact not yet recorded, kept in the event store's database.

Plans travel keyed by customer, tickets keyed by ticket, so an OpenTicket can reach the intake before the plan it
needs, and the ticket's follow-ups then arrive before their opening is stored. Such commands wait here (durable
across restarts, shared by every intake on the database) until the fact arrives or they waited too long.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from eventsourcing.persistence import PersistenceError

# Every intake asks "which of these tickets have commands waiting?" once per batch: chunks keep the SQL small.
LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class ParkedCommand:
    """A command's original record, the stream whose order it keeps, and why and since when it waits."""

    command_id: str
    stream_id: str
    parked_at: float
    reason: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def source(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


class ParkingLot:
    """Parked commands in one table next to the events: SQLite or PostgreSQL, through a DB-API connection."""

    def __init__(
        self,
        connect: Callable[[], Any],
        table: str = "nettask_parked_commands",
        postgres: bool = False,
        errors: tuple[type[Exception], ...] = (sqlite3.Error,),
    ):
        """`errors`: what the driver raises when the database fails (sqlite3.Error, psycopg.Error)."""
        self._connect = connect
        self.errors = errors
        self._connection: Any = None
        self.table = table
        self._mark = "%s" if postgres else "?"
        self._blob = "BYTEA" if postgres else "BLOB"
        self.create_table()

    @property
    def connection(self) -> Any:
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def create_table(self) -> None:
        self._run(
            # Keyed by the record, not the command id: two records reusing one id must both wait, and both
            # be decided (the second then as a repeat or a conflicting one), not one of them silently dropped.
            f"CREATE TABLE IF NOT EXISTS {self.table} (command_id TEXT NOT NULL, stream_id TEXT NOT NULL, "
            f"parked_at DOUBLE PRECISION NOT NULL, reason TEXT NOT NULL, record_topic TEXT NOT NULL, "
            f"record_partition INTEGER NOT NULL, record_offset BIGINT NOT NULL, record_key {self._blob}, "
            f"record_value {self._blob} NOT NULL, record_headers TEXT NOT NULL, "
            f"PRIMARY KEY (record_topic, record_partition, record_offset))",
            f"CREATE INDEX IF NOT EXISTS {self.table.replace('.', '_')}_stream ON {self.table} (stream_id)",
        )

    def park(self, commands: Sequence[ParkedCommand]) -> None:
        """Add commands; a record already parked (a redelivery) stays as it was, with its first parking time."""
        if not commands:
            return
        marks = ", ".join([self._mark] * 10)
        self._many(
            f"INSERT INTO {self.table} VALUES ({marks}) "
            f"ON CONFLICT (record_topic, record_partition, record_offset) DO NOTHING",
            [_row(command) for command in commands],
        )

    def waiting_streams(self, stream_ids: Iterable[str]) -> set[str]:
        """Which of these streams have commands parked: later commands of theirs must queue behind them."""
        wanted = sorted(set(stream_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            marks = ", ".join([self._mark] * len(chunk))
            rows = self._query(f"SELECT DISTINCT stream_id FROM {self.table} WHERE stream_id IN ({marks})", chunk)
            found.update(row[0] for row in rows)
        return found

    def count(self) -> int:
        return self._query(f"SELECT COUNT(*) FROM {self.table}", [])[0][0]

    def oldest(self, limit: int) -> list[ParkedCommand]:
        """Up to `limit` parked commands in the order they were published (a ticket's are on one partition)."""
        rows = self._query(
            f"SELECT command_id, stream_id, parked_at, reason, record_topic, record_partition, record_offset, "
            f"record_key, record_value, record_headers FROM {self.table} "
            f"ORDER BY record_topic, record_partition, record_offset LIMIT {int(limit)}",
            [],
        )
        return [_parked(row) for row in rows]

    def remove(self, commands: Iterable[ParkedCommand]) -> None:
        sources = [(c.topic, c.partition, c.offset) for c in commands]
        if sources:
            where = f"record_topic = {self._mark} AND record_partition = {self._mark} AND record_offset = {self._mark}"
            self._many(f"DELETE FROM {self.table} WHERE {where}", sources)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _run(self, *statements: str) -> None:
        with self._transaction() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def _many(self, statement: str, rows: list) -> None:
        with self._transaction() as cursor:
            cursor.executemany(statement, rows)

    def _query(self, statement: str, parameters: list) -> list:
        with self._transaction() as cursor:
            cursor.execute(statement, parameters)
            return cursor.fetchall()

    def _transaction(self):
        return _Transaction(self)


class _Transaction:
    """A cursor whose work commits on success and rolls back on error.

    A database error comes out as the event store's PersistenceError, which the intake already rides out (it
    retries the batch later); a connection that failed is dropped, and the next transaction connects anew.
    """

    def __init__(self, lot: ParkingLot):
        self.lot = lot

    def __enter__(self):
        try:
            self.cursor = self.lot.connection.cursor()
        except self.lot.errors as error:
            self.lot.close()
            raise PersistenceError(f"parking lot unavailable: {error}") from error
        return self.cursor

    def __exit__(self, error_type, error, traceback) -> None:
        try:
            if error_type is None:
                self.lot.connection.commit()
            else:
                self.lot.connection.rollback()
        except self.lot.errors as failure:
            error = error or failure
        finally:
            self.cursor.close()
        if isinstance(error, self.lot.errors):
            self.lot.close()
            raise PersistenceError(f"parking lot unavailable: {error}") from error


def _row(command: ParkedCommand) -> tuple:
    headers = orjson.dumps([[name, value.hex() if value is not None else None] for name, value in command.headers])
    return (
        command.command_id, command.stream_id, command.parked_at, command.reason, command.topic, command.partition,
        command.offset, command.key, command.value, headers.decode(),
    )  # fmt: skip


def _parked(row: tuple) -> ParkedCommand:
    headers = [(name, bytes.fromhex(value) if value is not None else None) for name, value in orjson.loads(row[9])]
    key = bytes(row[7]) if row[7] is not None else None
    return ParkedCommand(
        command_id=row[0], stream_id=row[1], parked_at=row[2], reason=row[3], topic=row[4], partition=row[5],
        offset=row[6], key=key, value=bytes(row[8]), headers=headers,
    )  # fmt: skip
