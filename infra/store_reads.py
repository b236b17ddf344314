"""Reads the states of many streams in one query on the library's events table, for the intake's write side."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from itertools import groupby
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Identifier

from domain import rules
from domain.desk import TicketDesk

# SQLite before 3.32 refuses a statement with more than 999 parameters; PostgreSQL takes one array, but a
# query for thousands of streams would hold one huge answer in memory: chunks of this many ids either way.
IDS_PER_QUERY = 500

# The stored events of some streams, ordered by stream and then by version.
RowsReader = Callable[[list[UUID]], Iterable[StoredEvent]]


def states_reader(desk: TicketDesk) -> Callable[[Collection[UUID]], dict[UUID, rules.State]] | None:
    """The write side's `StatesReader` on the desk's own store connection; None for a store it does not know
    (the in-memory store of the unit tests), where the write side reads stream by stream."""
    recorder = desk.recorder
    if isinstance(recorder, PostgresAggregateRecorder):
        rows: RowsReader = _postgres_rows(recorder)
    elif isinstance(recorder, SQLiteAggregateRecorder):
        rows = _sqlite_rows(recorder)
    else:
        return None
    return lambda streams: _states(rows, desk.mapper, list(streams))


def _states(rows: RowsReader, mapper: Mapper, streams: list[UUID]) -> dict[UUID, rules.State]:
    """Each stream's events folded with the domain's own projection; a stream with no events is left out."""
    states: dict[UUID, rules.State] = {}
    for start in range(0, len(streams), IDS_PER_QUERY):
        for stream, stored in groupby(rows(streams[start : start + IDS_PER_QUERY]), key=_originator):
            states[stream] = rules.project(None, map(mapper.to_domain_event, stored))
    return states


def _originator(stored: StoredEvent) -> Any:
    return stored.originator_id


def _postgres_rows(recorder: PostgresAggregateRecorder) -> RowsReader:
    statement = SQL(
        "SELECT originator_id, originator_version, topic, state FROM {schema}.{table}"
        " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
    ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))

    def rows(streams: list[UUID]) -> Iterator[StoredEvent]:
        with recorder.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(statement, (streams,), prepare=True)
            fetched = cursor.fetchall()
        for row in fetched:
            yield StoredEvent(row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"]))

    return rows


def _sqlite_rows(recorder: SQLiteAggregateRecorder) -> RowsReader:
    def rows(streams: list[UUID]) -> Iterator[StoredEvent]:
        statement = (
            f"SELECT originator_id, originator_version, topic, state FROM {recorder.events_table_name}"
            f" WHERE originator_id IN ({','.join('?' * len(streams))}) ORDER BY originator_id, originator_version"
        )
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, [stream.hex for stream in streams])
            fetched = cursor.fetchall()
        for row in fetched:
            originator = recorder.convert_originator_id(row["originator_id"])
            yield StoredEvent(originator, row["originator_version"], row["topic"], row["state"])

    return rows
