"""Closing a month's statements, as a small event-sourced aggregate per month: closed once, never reopened."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain.commands import CloseMonth, event_id
from domain.errors import MonthNotEnded
from domain.events import MonthClosed
from domain.money import Month
from domain.policy import PolicyBook


class ClosedMonth(BaseModel):
    """A month that was closed: when, and by which command (so a repeat is recognised)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    version: int
    month: str
    closed_at: datetime
    seen_commands: frozenset[UUID] = frozenset()
    command_digests: dict[UUID, str] = {}


def project(state: ClosedMonth | None, events: Iterable[MonthClosed]) -> ClosedMonth | None:
    for event in events:
        state = evolve(state, event)
    return state


def evolve(state: ClosedMonth | None, event: MonthClosed) -> ClosedMonth:
    digests = {event.command_id: event.command_digest} if event.command_digest else {}
    return ClosedMonth(
        id=event.originator_id,
        version=event.originator_version,
        month=event.month,
        closed_at=event.closed_at,
        seen_commands=frozenset({event.command_id}),
        command_digests=digests,
    )


def close_month(state: ClosedMonth | None, command: CloseMonth, book: PolicyBook) -> list[MonthClosed]:
    """Close the month once it has ended; closing it again changes nothing."""
    book.in_force(command.occurred_at).check_source(command.type, command.source)
    if state is not None:
        command.is_repeat(state.seen_commands, state.command_digests)  # a reused id with another body is refused
        return []
    _refuse_before_end(command, book)
    return [
        MonthClosed(
            originator_id=command.stream_id,
            originator_version=1,
            event_id=event_id(command.command_id, command.stream_id, 0),
            command_id=command.command_id,
            command_digest=command.digest,
            actor=command.actor,
            occurred_at=command.occurred_at,
            month=command.month,
            closed_at=command.occurred_at,
        )
    ]


def month_end(month: Month, book: PolicyBook) -> datetime:
    """The first instant after `month` in the calendar's zone: the month has ended from then on."""
    return month.next().first_instant(book.latest.calendar.zone)


def _refuse_before_end(command: CloseMonth, book: PolicyBook) -> None:
    ends = month_end(Month.parse(command.month), book)
    if command.occurred_at < ends:
        raise MonthNotEnded(
            f"month {command.month} has not ended at {command.occurred_at.isoformat()}: "
            f"it can be closed from {ends.isoformat()} on"
        )
