"""Closing a month's statements, as a small event-sourced aggregate per month: closed once, never reopened."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from domain.events import MonthClosed
from domain.frozen import Frozen


class ClosedMonth(Frozen):
    """A month that was closed: when, and by which command (so a repeat is recognised)."""

    id: UUID
    version: int
    month: str
    closed_at: datetime
    seen_commands: frozenset[UUID] = frozenset()
    command_digests: dict[UUID, str] = {}


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
