"""What a watchdog should say about a ticket at an instant: breaches to record and risks to flag. Pure."""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.commands import FlagSlaAtRisk, RecordSlaBreach
from domain.sla import MetricState
from domain.ticket import Ticket

WATCHDOG_ACTOR = "watchdog"
# The source the shipped policy accepts RecordSlaBreach and FlagSlaAtRisk from.
WATCHDOG_SOURCE = "nettask-watchdog"


def watch_command_id(ticket_id: UUID, metric: str, kind: str) -> UUID:
    """Deterministic, so two watchdogs (or one restarted) noticing the same thing send the same command."""
    return uuid5(NAMESPACE_URL, f"nettask:watch:{ticket_id}:{metric}:{kind}")


def due_commands(ticket: Ticket, now: datetime) -> list[RecordSlaBreach | FlagSlaAtRisk]:
    """Commands for running metrics that are past due (a breach) or past their at-risk time (a flag)."""
    found: list[RecordSlaBreach | FlagSlaAtRisk] = []
    for metric in ticket.metrics.values():
        if metric.state is not MetricState.RUNNING:
            continue
        if metric.due_at is not None and metric.due_at < now:  # due at `now` itself is still in time
            found.append(_command(RecordSlaBreach, ticket, metric.name, now))
        elif metric.at_risk_at is not None and metric.at_risk_at <= now and not metric.at_risk_flagged:
            found.append(_command(FlagSlaAtRisk, ticket, metric.name, now))
    return found


def _command(kind, ticket: Ticket, metric: str, now: datetime):
    return kind(
        command_id=watch_command_id(ticket.id, metric, kind.__name__),
        occurred_at=now,
        actor=WATCHDOG_ACTOR,
        source=WATCHDOG_SOURCE,
        ticket_id=ticket.id,
        metric=metric,
    )
