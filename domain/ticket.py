"""The ticket aggregate's state, rebuilt from its events by a pure `evolve` (no policy, no calendar needed)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from functools import singledispatch
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain import events as ev
from domain import sla
from domain.policy import Channel, ClockKind, Severity
from domain.sla import Metric, MetricState


class TicketStatus(StrEnum):
    OPEN = "open"
    AWAITING_CUSTOMER = "awaiting_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


class Ticket(BaseModel):
    """Where a ticket stands: status, severity, SLA metrics, pending callback and the commands already seen."""

    model_config = ConfigDict(frozen=True)

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


def evolve(ticket: Ticket | None, event: ev.TicketEvent) -> Ticket:
    """One event applied: bookkeeping common to all, then the event's own change."""
    changed = _apply(event, ticket)
    return changed.model_copy(
        update={
            "version": event.originator_version,
            "seen_commands": changed.seen_commands | {event.command_id},
        }
    )


@singledispatch
def _apply(event: ev.TicketEvent, ticket: Ticket) -> Ticket:
    return ticket


def _planned(metric: Metric, deadline: ev.Deadline) -> Metric:
    return metric.model_copy(
        update={
            "target": timedelta(minutes=deadline.target_minutes),
            "clock": deadline.clock,
            "due_at": deadline.due_at,
            "at_risk_at": deadline.at_risk_at,
        }
    )


def _with_deadlines(ticket: Ticket, deadlines: Iterable[ev.Deadline], at: datetime) -> dict[str, Metric]:
    """Metrics updated from an event's deadlines; a deadline for an unknown metric starts it at `at`."""
    metrics = dict(ticket.metrics)
    for deadline in deadlines:
        current = metrics.get(deadline.metric)
        if current is None:
            current = sla.start(deadline.metric, at, timedelta(minutes=deadline.target_minutes), deadline.clock)
        metrics[deadline.metric] = _planned(current, deadline)
    return metrics


def _retargeted(ticket: Ticket, target_minutes: int, clock: ClockKind) -> dict[str, Metric]:
    target = timedelta(minutes=target_minutes)
    return {name: sla.retarget(m, target, clock) if m.is_open else m for name, m in ticket.metrics.items()}


@_apply.register
def _(event: ev.Opened, ticket: None) -> Ticket:
    first = ev_deadline(event.deadlines, sla.FIRST_RESPONSE)
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
        metrics={first.metric: _planned(sla.start(first.metric, event.occurred_at, timedelta(0), first.clock), first)},
    )


def ev_deadline(deadlines: tuple[ev.Deadline, ...], metric: str) -> ev.Deadline:
    return next(d for d in deadlines if d.metric == metric)


def _severity_set(ticket: Ticket, event: ev.Escalated | ev.SeverityChanged) -> Ticket:
    """A new severity: every open metric counted against the event's target, running ones re-planned."""
    retargeted = ticket.model_copy(update={"metrics": _retargeted(ticket, event.target_minutes, event.clock)})
    return retargeted.model_copy(
        update={
            "severity": event.to_severity,
            "target": timedelta(minutes=event.target_minutes),
            "clock": event.clock,
            "metrics": _with_deadlines(retargeted, event.deadlines, event.occurred_at),
        }
    )


@_apply.register
def _(event: ev.Escalated, ticket: Ticket) -> Ticket:
    return _severity_set(ticket, event).model_copy(
        update={
            "highest_severity": max(ticket.highest_severity, event.to_severity, key=lambda s: s.rank),
            "escalation_phone": ticket.escalation_phone or event.escalation_phone,
        }
    )


@_apply.register
def _(event: ev.SeverityChanged, ticket: Ticket) -> Ticket:
    return _severity_set(ticket, event)


def _stopped(ticket: Ticket, names: Iterable[str], at: datetime, state: MetricState) -> dict[str, Metric]:
    metrics = dict(ticket.metrics)
    for name in names:
        metrics[name] = sla.stop(metrics[name], at, state)
    return metrics


@_apply.register
def _(event: ev.Responded, ticket: Ticket) -> Ticket:
    return ticket.model_copy(
        update={
            "metrics": _stopped(ticket, event.metrics_met, event.occurred_at, MetricState.MET),
            "first_responded_at": ticket.first_responded_at or event.occurred_at,
        }
    )


@_apply.register
def _(event: ev.CustomerReplied, ticket: Ticket) -> Ticket:
    started = sum(1 for d in event.deadlines if d.metric not in ticket.metrics)
    return ticket.model_copy(
        update={
            "metrics": _with_deadlines(ticket, event.deadlines, event.occurred_at),
            "next_responses_started": ticket.next_responses_started + started,
        }
    )


@_apply.register
def _(event: ev.AwaitingCustomer, ticket: Ticket) -> Ticket:
    metrics = dict(ticket.metrics)
    for name in event.metrics_paused:
        # While paused with time left, the due time is unknown until the ticket resumes.
        paused = sla.pause(metrics[name], event.occurred_at)
        metrics[name] = paused.model_copy(update={"due_at": None, "at_risk_at": None})
    return ticket.model_copy(update={"metrics": metrics, "status": TicketStatus.AWAITING_CUSTOMER})


@_apply.register
def _(event: ev.Resumed, ticket: Ticket) -> Ticket:
    metrics = dict(ticket.metrics)
    for deadline in event.deadlines:
        metrics[deadline.metric] = _planned(sla.resume(metrics[deadline.metric], event.occurred_at), deadline)
    return ticket.model_copy(update={"metrics": metrics, "status": TicketStatus.OPEN})


@_apply.register
def _(event: ev.CallbackRequested, ticket: Ticket) -> Ticket:
    return ticket.model_copy(update={"pending_callback": event.event_id})


@_apply.register
def _(event: ev.CallbackDone, ticket: Ticket) -> Ticket:
    return ticket.model_copy(update={"pending_callback": None})


@_apply.register
def _(event: ev.Resolved, ticket: Ticket) -> Ticket:
    return ticket.model_copy(
        update={
            "metrics": _stopped(ticket, event.metrics_met, event.occurred_at, MetricState.MET),
            "status": TicketStatus.RESOLVED,
        }
    )


@_apply.register
def _(event: ev.Reopened, ticket: Ticket) -> Ticket:
    started = sum(1 for d in event.deadlines if d.metric not in ticket.metrics)
    return ticket.model_copy(
        update={
            "metrics": _with_deadlines(ticket, event.deadlines, event.occurred_at),
            "next_responses_started": ticket.next_responses_started + started,
            "status": TicketStatus.OPEN,
        }
    )


@_apply.register
def _(event: ev.Closed, ticket: Ticket) -> Ticket:
    return ticket.model_copy(update={"status": TicketStatus.CLOSED})


@_apply.register
def _(event: ev.Withdrawn, ticket: Ticket) -> Ticket:
    return ticket.model_copy(
        update={
            "metrics": _stopped(ticket, event.metrics_cancelled, event.occurred_at, MetricState.CANCELLED),
            "status": TicketStatus.WITHDRAWN,
        }
    )


@_apply.register
def _(event: ev.SlaBreached, ticket: Ticket) -> Ticket:
    return ticket.model_copy(
        update={"metrics": _stopped(ticket, [event.metric], event.breached_at, MetricState.BREACHED)}
    )


@_apply.register
def _(event: ev.SlaAtRisk, ticket: Ticket) -> Ticket:
    metrics = dict(ticket.metrics)
    metrics[event.metric] = metrics[event.metric].model_copy(update={"at_risk_flagged": True})
    return ticket.model_copy(update={"metrics": metrics})
