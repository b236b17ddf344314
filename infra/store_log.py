"""Reads the store's notification log with our own SQL, for rebuilds: stored JSON validated, no library objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import resolve_topic
from psycopg.sql import SQL, Composed, Identifier, Literal
from pydantic import ValidationError

from domain import events as ev
from domain.desk import TicketDesk
from domain.validation import Location, dotted, validation_problems

# A ticket's share is its id's first hex digits (12 bits, 4,096 values) modulo the number of shares: the same
# digits in Python, in SQLite (ids stored as 32 hex digits) and in PostgreSQL (uuid), so the filter runs in SQL.
SHARE_HEX_DIGITS = 3
_HEX = "0123456789abcdef"

# (notification id, topic, state) rows of the notifications after one id up to another, of the share asked for.
RowsReader = Callable[[int, int], list[tuple[int, str, Any]]]


class InvalidStoredEvent(ValueError):
    """A stored event that its class no longer validates: the store is the truth, so a rebuild stops there."""


@dataclass(frozen=True)
class Share:
    """The tickets whose share number is `index` of `count`: one worker's part of a rebuild."""

    index: int
    count: int

    def holds(self, ticket_hex: str) -> bool:
        return int(ticket_hex[:SHARE_HEX_DIGITS], 16) % self.count == self.index


EVERY_TICKET = Share(0, 1)


class StoreLog:
    """The desk's notification log read by notification id ranges, the events of `kinds` only (and, given a
    share, of its tickets only). Each is read as the mapper reads it (its class from the topic, validated)."""

    def __init__(
        self, desk: TicketDesk, kinds: tuple[type[ev.DomainEvent], ...] = (ev.TicketEvent,), share: Share = EVERY_TICKET
    ):
        self.desk = desk
        self.kinds = kinds
        self.share = share
        self._rows = _rows_reader(desk.recorder, share)
        self._classes: dict[str, type[ev.DomainEvent] | None] = {}

    def last_id(self) -> int:
        return self.desk.recorder.max_notification_id() or 0

    def read(self, after: int, limit: int, upto: int) -> tuple[list[ev.TicketEvent], int]:
        """Events of the notifications after `after` up to `upto`, at most `limit` notifications further on; and
        the last notification id covered. Ids are read as ranges: a share's filter leaves no gap unread."""
        last = min(after + limit, upto)
        if last <= after:
            return [], upto
        # Customers' plans and closed months travel on the same log: skipped before their JSON is parsed.
        rows = [
            (notification, kind, state)
            for notification, topic, state in self._rows(after, last)
            if (kind := self._class_of(topic))
        ]
        return [_parsed(*row) for row in rows], last

    def _class_of(self, topic: str) -> type[ev.DomainEvent] | None:
        """The event class stored under `topic`, or None for one this view does not fold."""
        if topic not in self._classes:
            kind = resolve_topic(topic)
            self._classes[topic] = kind if issubclass(kind, self.kinds) else None
        return self._classes[topic]


def _parsed(notification: int, kind: type[ev.DomainEvent], state: Any) -> Any:
    try:
        return kind.model_validate_json(state)
    except ValidationError as error:
        problem = validation_problems(error, where=_place, first_only=True)
        raise InvalidStoredEvent(
            f"stored event {notification} ({kind.__name__}) does not validate: {problem}"
        ) from None


def _place(location: Location) -> str:
    return dotted(location) if location else "its JSON"


def _rows_reader(recorder: Any, share: Share) -> RowsReader:
    if isinstance(recorder, PostgresApplicationRecorder):
        return _postgres_rows(recorder, share)
    if isinstance(recorder, SQLiteApplicationRecorder):
        return _sqlite_rows(recorder, share)
    return _library_rows(recorder, share)


def _sqlite_rows(recorder: SQLiteApplicationRecorder, share: Share) -> RowsReader:
    statement = f"SELECT rowid, topic, state FROM {recorder.events_table_name} WHERE rowid > ? AND rowid <= ?"
    if share.count > 1:
        statement += f" AND {sqlite_share_of('originator_id')} % {share.count} = {share.index}"
    statement += " ORDER BY rowid"

    def rows(after: int, last: int) -> list[tuple[str, Any]]:
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (after, last))
            return [(row[0], row[1], row[2]) for row in cursor.fetchall()]

    return rows


def sqlite_share_of(column: str) -> str:
    """The share number's dividend in SQLite: the id's first hex digits as an integer, digit by digit."""
    digits = [f"(instr('{_HEX}', lower(substr({column}, {i + 1}, 1))) - 1)" for i in range(SHARE_HEX_DIGITS)]
    return "(" + " + ".join(f"{digit} * {16 ** (SHARE_HEX_DIGITS - 1 - i)}" for i, digit in enumerate(digits)) + ")"


def _postgres_rows(recorder: PostgresApplicationRecorder, share: Share) -> RowsReader:
    statement: Composed = SQL(
        "SELECT notification_id, topic, state FROM {schema}.{table} WHERE notification_id > %s"
    ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name)) + SQL(
        " AND notification_id <= %s"
    )
    if share.count > 1:
        bits = SHARE_HEX_DIGITS * 4
        dividend = SQL("('x' || substr(originator_id::text, 1, {digits}))::bit({bits})::int").format(
            digits=Literal(SHARE_HEX_DIGITS), bits=Literal(bits)
        )
        # mod(), not %: a bare % in a statement with parameters would be read as a placeholder.
        statement += SQL(" AND mod({dividend}, {count}) = {index}").format(
            dividend=dividend, count=Literal(share.count), index=Literal(share.index)
        )
    statement += SQL(" ORDER BY notification_id")

    def rows(after: int, last: int) -> list[tuple[str, Any]]:
        with recorder.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(statement, (after, last), prepare=True)
            return [(row["notification_id"], row["topic"], bytes(row["state"])) for row in cursor.fetchall()]

    return rows


def _library_rows(recorder: Any, share: Share) -> RowsReader:
    """Any other recorder (the unit tests' in-memory store): the library's notifications, filtered here."""

    def rows(after: int, last: int) -> list[tuple[str, Any]]:
        notifications = recorder.select_notifications(start=after + 1, limit=last - after, stop=last)
        return [(n.id, n.topic, n.state) for n in notifications if share.holds(n.originator_id.hex)]

    return rows
