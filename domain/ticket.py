"""The ticket aggregate's state, rebuilt from its events by a pure `evolve` (no policy, no calendar needed)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import singledispatch
from typing import Any
from uuid import UUID

from domain import events as ev
from domain import sla
from domain.copying import replaced
from domain.policy import Channel, ClockKind, Severity
from domain.sla import Metric, MetricState


class TicketStatus(StrEnum):
    OPEN = "open"
    AWAITING_CUSTOMER = "awaiting_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True, kw_only=True)
class Ticket:
    """Where a ticket stands: status, severity, SLA metrics, pending callback and the commands already seen."""

    id: UUID
    version: int
    customer_id: str
    department: str
    channel: Channel
    language: str
    plan: str
    policy_version: str
    opened_at: datetime
    severity: Severity
    highest_severity: Severity
    escalation_phone: bool = False
    status: TicketStatus = TicketStatus.OPEN
    target: timedelta
    clock: ClockKind
    metrics: dict[str, Metric]
    first_responded_at: datetime | None = None
    next_responses_started: int = 0
    pending_callback: UUID | None = None
    seen_commands: frozenset[UUID] = frozenset()
    command_digests: dict[UUID, str] = field(default_factory=dict)

    def metric(self, name: str) -> Metric | None:
        return self.metrics.get(name)

    def open_metrics(self) -> list[Metric]:
        return [m for m in self.metrics.values() if m.is_open]

    def running_metrics(self) -> list[Metric]:
        return [m for m in self.metrics.values() if m.state is MetricState.RUNNING]


def project(ticket: Ticket | None, events: Iterable[ev.TicketEvent]) -> Ticket | None:
    """Fold events onto a state; the repository's projector function."""
    for event in events:
        ticket = evolve(ticket, event)
    return ticket


def evolve(ticket: Ticket | None, event: ev.TicketEvent, *, remember_commands: bool = True) -> Ticket:
    """One event applied: its own changes and the bookkeeping common to all, in a single copy.

    A view that never decides commands passes `remember_commands=False`: its states keep no command ids.
    """
    if ticket is None:
        return _opened(event, remember_commands)
    changes = _changes(event, ticket)
    changes["version"] = event.originator_version
    if remember_commands and event.command_id not in ticket.seen_commands:
        changes["seen_commands"] = ticket.seen_commands | {event.command_id}
        if event.command_digest is not None:
            changes["command_digests"] = {**ticket.command_digests, event.command_id: event.command_digest}
    return replaced(ticket, **changes)


Changes = dict[str, Any]


@singledispatch
def _changes(event: ev.TicketEvent, ticket: Ticket) -> Changes:
    raise TypeError(f"{type(event).__name__} cannot happen to an existing ticket")


def _planned(metric: Metric, deadline: ev.Deadline) -> Metric:
    return replaced(
        metric,
        target=timedelta(minutes=deadline.target_minutes),
        clock=deadline.clock,
        due_at=deadline.due_at,
        at_risk_at=deadline.at_risk_at,
    )


def _with_deadlines(metrics: dict[str, Metric], deadlines: Iterable[ev.Deadline], at: datetime) -> dict[str, Metric]:
    """Metrics updated from an event's deadlines; a deadline for an unknown metric starts it at `at`."""
    metrics = dict(metrics)
    for deadline in deadlines:
        current = metrics.get(deadline.metric)
        if current is None:
            current = sla.start(deadline.metric, at, timedelta(minutes=deadline.target_minutes), deadline.clock)
        metrics[deadline.metric] = _planned(current, deadline)
    return metrics


def _opened(event: ev.Opened, remember_commands: bool) -> Ticket:
    first = next(d for d in event.deadlines if d.metric == sla.FIRST_RESPONSE)
    return Ticket(
        id=event.ticket_id,
        version=event.originator_version,
        customer_id=event.customer_id,
        department=event.department,
        channel=event.channel,
        language=event.language,
        plan=event.plan,
        policy_version=event.policy_version,
        opened_at=event.occurred_at,
        severity=event.severity,
        highest_severity=event.severity,
        target=timedelta(minutes=event.target_minutes),
        clock=event.clock,
        metrics=_with_deadlines({}, (first,), event.occurred_at),
        seen_commands=frozenset({event.command_id}) if remember_commands else frozenset(),
        command_digests={event.command_id: event.command_digest} if event.command_digest and remember_commands else {},
    )


def _severity_set(ticket: Ticket, event: ev.Escalated | ev.SeverityChanged) -> Changes:
    """A new severity: every open metric counted against the event's target, running ones re-planned."""
    target = timedelta(minutes=event.target_minutes)
    retargeted = {n: sla.retarget(m, target, event.clock) if m.is_open else m for n, m in ticket.metrics.items()}
    return {
        "severity": event.to_severity,
        "target": target,
        "clock": event.clock,
        "metrics": _with_deadlines(retargeted, event.deadlines, event.occurred_at),
    }


@_changes.register
def _(event: ev.Escalated, ticket: Ticket) -> Changes:
    return _severity_set(ticket, event) | {
        "highest_severity": max(ticket.highest_severity, event.to_severity, key=lambda s: s.rank),
        "escalation_phone": ticket.escalation_phone or event.escalation_phone,
    }


@_changes.register
def _(event: ev.SeverityChanged, ticket: Ticket) -> Changes:
    return _severity_set(ticket, event)


def _stopped(ticket: Ticket, names: Iterable[str], at: datetime, state: MetricState) -> dict[str, Metric]:
    metrics = dict(ticket.metrics)
    for name in names:
        metrics[name] = sla.stop(metrics[name], at, state)
    return metrics


def _next_response_started(ticket: Ticket, event: ev.CustomerReplied | ev.Reopened) -> Changes:
    started = sum(1 for d in event.deadlines if d.metric not in ticket.metrics)
    return {
        "metrics": _with_deadlines(ticket.metrics, event.deadlines, event.occurred_at),
        "next_responses_started": ticket.next_responses_started + started,
    }


@_changes.register
def _(event: ev.Responded, ticket: Ticket) -> Changes:
    return {
        "metrics": _stopped(ticket, event.metrics_met, event.occurred_at, MetricState.MET),
        "first_responded_at": ticket.first_responded_at or event.occurred_at,
    }


@_changes.register
def _(event: ev.CustomerReplied, ticket: Ticket) -> Changes:
    return _next_response_started(ticket, event)


@_changes.register
def _(event: ev.AwaitingCustomer, ticket: Ticket) -> Changes:
    metrics = dict(ticket.metrics)
    for name in event.metrics_paused:
        # While paused with time left, the due time is unknown until the ticket resumes.
        paused = sla.pause(metrics[name], event.occurred_at)
        metrics[name] = replaced(paused, due_at=None, at_risk_at=None)
    return {"metrics": metrics, "status": TicketStatus.AWAITING_CUSTOMER}


@_changes.register
def _(event: ev.Resumed, ticket: Ticket) -> Changes:
    metrics = dict(ticket.metrics)
    for deadline in event.deadlines:
        metrics[deadline.metric] = _planned(sla.resume(metrics[deadline.metric], event.occurred_at), deadline)
    return {"metrics": metrics, "status": TicketStatus.OPEN}


@_changes.register
def _(event: ev.CallbackRequested, ticket: Ticket) -> Changes:
    return {"pending_callback": event.event_id}


@_changes.register
def _(event: ev.CallbackDone, ticket: Ticket) -> Changes:
    return {"pending_callback": None}


@_changes.register
def _(event: ev.Resolved, ticket: Ticket) -> Changes:
    return {
        "metrics": _stopped(ticket, event.metrics_met, event.occurred_at, MetricState.MET),
        "status": TicketStatus.RESOLVED,
    }


@_changes.register
def _(event: ev.Reopened, ticket: Ticket) -> Changes:
    return _next_response_started(ticket, event) | {"status": TicketStatus.OPEN}


@_changes.register
def _(event: ev.Closed, ticket: Ticket) -> Changes:
    return {"status": TicketStatus.CLOSED}


@_changes.register
def _(event: ev.Withdrawn, ticket: Ticket) -> Changes:
    return {
        "metrics": _stopped(ticket, event.metrics_cancelled, event.occurred_at, MetricState.CANCELLED),
        "status": TicketStatus.WITHDRAWN,
    }


@_changes.register
def _(event: ev.SlaBreached, ticket: Ticket) -> Changes:
    return {"metrics": _stopped(ticket, [event.metric], event.breached_at, MetricState.BREACHED)}


@_changes.register
def _(event: ev.SlaAtRisk, ticket: Ticket) -> Changes:
    metrics = dict(ticket.metrics)
    metrics[event.metric] = replaced(metrics[event.metric], at_risk_flagged=True)
    return {"metrics": metrics}
