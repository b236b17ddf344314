"""Statement lines as table rows, and the lines last written per statement, so a rewrite touches only changed rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from domain.statement import CallbackLine, IncidentLine, Statement

StatementKey = tuple[str, str]  # (customer id, month)
# Lines held at most (about 1 KB each with their row): past this the least recently written statements are dropped
# (their next rewrite is then a whole one), so a projector over many customers stays flat in memory, at some 50 MB.
# Open statements are the ones rewritten, a few per customer.
MAX_LINES = 50_000


def statement_lines(s: Statement) -> list[Any]:
    """The statement's incident, callback and adjustment lines, in the order they are numbered."""
    return [*s.incident_lines, *s.callback_lines, *s.adjustments]


def line_rows(s: Statement) -> list[tuple]:
    """One row per incident, callback and adjustment line, numbered in that order."""
    return [line_row(s, number, line) for number, line in enumerate(statement_lines(s), start=1)]


def line_row(s: Statement, number: int, line: Any) -> tuple:
    """The row of the statement's line `number`: its kind, then the columns that kind fills (others None)."""
    head = (s.customer_id, str(s.month), number)
    if isinstance(line, IncidentLine):
        return (*head, "incident", str(line.ticket_id), line.reference, line.opened_at, line.severity.value,
                line.band.value, line.included, None, line.price, None, None, _ids(line.source_event_ids))  # fmt: skip
    if isinstance(line, CallbackLine):
        return (*head, "callback", str(line.ticket_id), line.reference, line.done_at, None, None, None, line.over,
                line.price, None, None, _ids((line.event_id,)))  # fmt: skip
    return (*head, "adjustment", str(line.ticket_id), line.reference, None, None, None, None, None, line.amount,
            str(line.month), line.reason, _ids(line.source_event_ids))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Written:
    """A statement's text as written, its lines, and their rows as the database took them."""

    text: str
    lines: tuple[Any, ...]
    rows: tuple[tuple, ...]


@dataclass(frozen=True, slots=True)
class LineChanges:
    """What a statement's rewrite does to its lines: rows written over (or added), and line numbers past the end."""

    rows: list[tuple]
    dropped_from: int


class WrittenLines:
    """The lines last written per statement, each trusted only while the database still holds the statement text
    written with them (as the state cache trusts a state): a batch that rolled back, or another writer, leaves
    other text, and the statement is rewritten whole."""

    def __init__(self, row: Callable[[tuple], tuple], limit: int = MAX_LINES):
        self._row, self._limit = row, limit
        self._held: dict[StatementKey, Written] = {}
        self._lines = 0  # lines held, over every statement

    def changes(self, key: StatementKey, stored_text: str | None, s: Statement) -> LineChanges | None:
        """Rows to write over the stored lines to make them `s`'s; None when the stored lines are not known."""
        held = self._held.get(key)
        if held is None or held.text != stored_text:
            return None
        lines = statement_lines(s)
        rows = [self._row(line_row(s, n, line)) for n, line in _changed(held.lines, lines)]
        return LineChanges(rows, len(lines) + 1)

    def rows(self, s: Statement) -> list[tuple]:
        """Every row of `s`'s lines, as the database takes them."""
        return [self._row(row) for row in line_rows(s)]

    def remember(self, key: StatementKey, text: str, s: Statement, changes: Iterable[tuple] = ()) -> None:
        """Note that `s`, as `text`, and its lines are what the database holds now (`changes`: rows just written
        over the lines held before, or every row when written whole)."""
        lines, held = tuple(statement_lines(s)), self.forget(key)
        rows = list(held.rows[: len(lines)]) if held else []
        rows += [None] * (len(lines) - len(rows))
        for row in changes:
            rows[row[2] - 1] = row
        if None in rows:  # a line neither held nor written: nothing to trust for this statement
            return
        self._held[key] = Written(text, lines, tuple(rows))
        self._lines += len(lines)
        while self._lines > self._limit:
            self.forget(next(iter(self._held)))

    def moved(self, key: StatementKey, text: str) -> None:
        """The statement's text changed but not its lines (its `as_of` moved)."""
        held = self._held.get(key)
        if held is not None:
            self._held[key] = Written(text, held.lines, held.rows)

    def forget(self, key: StatementKey) -> Written | None:
        held = self._held.pop(key, None)
        if held is not None:
            self._lines -= len(held.lines)
        return held


def _changed(before: tuple[Any, ...], after: list[Any]) -> list[tuple[int, Any]]:
    """The numbered lines of `after` that differ from the line of the same number in `before`, or are new."""
    return [
        (number, line)
        for number, line in enumerate(after, start=1)
        if number > len(before) or not _same(before[number - 1], line)
    ]


def _same(before: Any, after: Any) -> bool:
    """Lines are frozen models: equal class and field values make equal rows (and pydantic's `==` costs more)."""
    return before.__class__ is after.__class__ and before.__dict__ == after.__dict__


def _ids(event_ids: Iterable[Any]) -> str:
    return orjson.dumps([str(event_id) for event_id in event_ids]).decode()
