"""What a watchdog should say at an instant: breaches to record, risks to flag, months to close. Pure."""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.billing import closing_instant, is_past_closing, policy_for_month
from domain.commands import CloseMonth, FlagSlaAtRisk, RecordSlaBreach
from domain.money import Month
from domain.policy import PolicyBook
from domain.sla import MetricState
from domain.ticket import Ticket

WATCHDOG_ACTOR = "watchdog"
# The source the shipped policy accepts RecordSlaBreach, FlagSlaAtRisk and CloseMonth from.
WATCHDOG_SOURCE = "nettask-watchdog"
# Commands name instants within a century (2000 to 2100): a loop over months never needs more steps.
MAX_MONTHS = 1200


def watch_command_id(ticket_id: UUID, metric: str, kind: str) -> UUID:
    """Deterministic, so two watchdogs (or one restarted) noticing the same thing send the same command."""
    return uuid5(NAMESPACE_URL, f"nettask:watch:{ticket_id}:{metric}:{kind}")


def close_month_command_id(month: Month) -> UUID:
    """Deterministic per month, like the metric commands: every watchdog closes a month with the same id."""
    return uuid5(NAMESPACE_URL, f"nettask:watch:month:{month}:CloseMonth")


def due_commands(ticket: Ticket, now: datetime) -> list[RecordSlaBreach | FlagSlaAtRisk]:
    """Commands for running metrics that are past due (a breach) or past their at-risk time (a flag)."""
    found: list[RecordSlaBreach | FlagSlaAtRisk] = []
    for metric in ticket.metrics.values():
        if metric.state is not MetricState.RUNNING:
            continue
        if metric.due_at is not None and metric.due_at < now:  # due at `now` itself is still in time
            found.append(watch_command(RecordSlaBreach, ticket.id, metric.name, now))
        elif metric.at_risk_at is not None and metric.at_risk_at <= now and not metric.at_risk_flagged:
            found.append(watch_command(FlagSlaAtRisk, ticket.id, metric.name, now))
    return found


def watch_command(kind, ticket_id: UUID, metric: str, now: datetime):
    """A RecordSlaBreach or FlagSlaAtRisk for one metric, noticed at `now`, with its deterministic id."""
    return kind(
        command_id=watch_command_id(ticket_id, metric, kind.__name__),
        occurred_at=now,
        actor=WATCHDOG_ACTOR,
        source=WATCHDOG_SOURCE,
        ticket_id=ticket_id,
        metric=metric,
    )


def months_to_close(book: PolicyBook, first: datetime, now: datetime) -> list[Month]:
    """The months from the one of `first` on whose closing day has come at `now`, oldest first."""
    month, found = Month.of(first, book.latest.calendar.zone), []
    while len(found) < MAX_MONTHS and is_past_closing(policy_for_month(book, month), month, now):
        found.append(month)
        month = month.next()
    return found


def close_month_command(book: PolicyBook, month: Month) -> CloseMonth:
    """CloseMonth as of the month's closing instant: the same body whenever it is sent, so a repeat is a repeat."""
    return CloseMonth(
        command_id=close_month_command_id(month),
        occurred_at=closing_instant(policy_for_month(book, month), month),
        actor=WATCHDOG_ACTOR,
        source=WATCHDOG_SOURCE,
        month=str(month),
    )
