"""The what-if tool: commands from a JSON-lines file applied in memory, then SLA states and statements."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from domain.commands import parse_command
from domain.desk import TicketDesk
from domain.explain import Explanation, explain_metric
from domain.policy import PolicyBook
from domain.ticket import Ticket
from domain.validation import validation_problems
from domain.watch import due_commands
from projections.billing import BillingFold, all_statements


@dataclass
class Problem:
    line: int
    error: str


@dataclass
class ReplayReport:
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("applied", "unchanged", "refused", "invalid"), 0)
    )
    problems: list[Problem] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    statements: list[Any] = field(default_factory=list)
    explanations: dict[UUID, list[Explanation]] = field(default_factory=dict)
    now: datetime | None = None


def replay(
    lines: Iterable[str], book: PolicyBook, now: datetime | None = None, *, explained: bool = False
) -> ReplayReport:
    """Apply every valid line in order, then let a watchdog look at `now` (default: the last command's time)."""
    desk = TicketDesk(book, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    report = ReplayReport()
    latest: datetime | None = None
    for number, text in _numbered(lines):
        try:
            command = parse_command(text)
        except ValidationError as error:
            report.counts["invalid"] += 1
            report.problems.append(Problem(number, validation_problems(error)))
            continue
        latest = max(latest or command.occurred_at, command.occurred_at)
        outcome = desk.handle(command)
        report.counts[outcome.status] += 1
        if outcome.refused:
            report.problems.append(Problem(number, f"{command.type} refused: {outcome.reason}"))
    report.now = now or latest
    billing = BillingFold(book).apply_all(desk.recorded_events())
    report.tickets = _watched_tickets(desk, billing, report.now) if report.now else []
    report.statements = all_statements(billing, report.now) if report.now else []
    if explained:
        report.explanations = {t.id: _explanations(desk, t, book) for t in report.tickets}
    return report


def _explanations(desk: TicketDesk, ticket: Ticket, book: PolicyBook) -> list[Explanation]:
    events = list(desk.events_of(ticket.id))
    return [explain_metric(events, name, book) for name in ticket.metrics]


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, text in enumerate(lines, start=1):
        if text.strip():
            yield number, text


def _watched_tickets(desk: TicketDesk, billing: BillingFold, now: datetime) -> list[Ticket]:
    """Each ticket as of `now`: breaches and risks a watchdog would have recorded by then are recorded."""
    watched = []
    for ticket_id in billing.usage.incidents:
        for command in due_commands(desk.ticket(ticket_id), now):
            desk.handle(command)
        watched.append(desk.ticket(ticket_id))
    return watched
