"""Why a due time is what it is: policy, clock, target, running stretches, pauses and closed hours skipped."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from domain import events as ev
from domain.calendar import Closure
from domain.durations import minutes
from domain.errors import DomainError
from domain.frozen import Frozen
from domain.policy import ClockKind, PolicyBook
from domain.sla import Metric, MetricState
from domain.targets import calendar_for
from domain.ticket import Ticket, project


class Pause(Frozen):
    paused_at: datetime
    paused_because: str
    resumed_at: datetime | None = None
    resumed_because: str | None = None


class TargetChange(Frozen):
    at: datetime
    change: str
    target_minutes: int
    clock: ClockKind


class SkippedTime(Frozen):
    start: datetime
    end: datetime
    reason: str


class Explanation(Frozen):
    """Everything needed to recompute a metric's due time by hand, and to see why it breached."""

    ticket_id: str
    metric: str
    policy_version: str
    plan: str
    language: str
    severity: str
    clock: ClockKind
    target_minutes: int
    started_at: datetime
    state: MetricState
    due_at: datetime | None
    breached_at: datetime | None
    stopped_at: datetime | None
    target_changes: tuple[TargetChange, ...]
    pauses: tuple[Pause, ...]
    closed_time_skipped: tuple[SkippedTime, ...]


def explain_metric(events: Iterable[ev.TicketEvent], metric_name: str, book: PolicyBook) -> Explanation:
    """Explain one metric of the ticket whose events are given (in stream order)."""
    history = list(events)
    ticket = project(None, history)
    if ticket is None or metric_name not in ticket.metrics:
        known = sorted(ticket.metrics) if ticket else []
        raise DomainError(f"no SLA metric {metric_name!r} on this ticket; it has {known}")
    metric = ticket.metrics[metric_name]
    return Explanation(
        ticket_id=str(ticket.id),
        metric=metric_name,
        policy_version=ticket.policy_version,
        plan=ticket.plan,
        language=ticket.language,
        severity=ticket.severity.value,
        clock=metric.clock,
        target_minutes=minutes(metric.target),
        started_at=metric.stretches[0].start,
        state=metric.state,
        due_at=metric.due_at,
        breached_at=metric.due_at if metric.state is MetricState.BREACHED else None,
        stopped_at=metric.stopped_at,
        target_changes=tuple(_target_changes(history, metric_name)),
        pauses=tuple(_pauses(history, metric_name)),
        closed_time_skipped=tuple(_skipped(ticket, metric, book)),
    )


def _target_changes(history: list[ev.TicketEvent], name: str) -> list[TargetChange]:
    changes = []
    for event in history:
        if isinstance(event, ev.Escalated | ev.SeverityChanged) and any(d.metric == name for d in event.deadlines):
            verb = "escalated" if isinstance(event, ev.Escalated) else "severity lowered"
            change = f"{verb} {event.from_severity.value} -> {event.to_severity.value}"
            changes.append(
                TargetChange(
                    at=event.occurred_at, change=change, target_minutes=event.target_minutes, clock=event.clock
                )
            )
    return changes


def _pauses(history: list[ev.TicketEvent], name: str) -> list[Pause]:
    pauses: list[Pause] = []
    for event in history:
        if isinstance(event, ev.AwaitingCustomer) and name in event.metrics_paused:
            pauses.append(Pause(paused_at=event.occurred_at, paused_because=event.reason))
        elif isinstance(event, ev.Resumed) and pauses and any(d.metric == name for d in event.deadlines):
            pauses[-1] = pauses[-1].model_copy(
                update={"resumed_at": event.occurred_at, "resumed_because": event.reason}
            )
    return pauses


def _skipped(ticket: Ticket, metric: Metric, book: PolicyBook) -> list[SkippedTime]:
    """Closed hours, weekends and holidays inside the stretches the metric ran, up to its due time or stop."""
    if metric.clock is ClockKind.ROUND_THE_CLOCK:
        return []
    calendar = calendar_for(book.version(ticket.policy_version))
    horizon = metric.due_at or metric.stopped_at
    found: list[Closure] = []
    for stretch in metric.stretches:
        end = min(t for t in (stretch.end, horizon) if t is not None) if (stretch.end or horizon) else None
        if end is not None and end > stretch.start:
            found += calendar.closures(stretch.start, end)
    return [SkippedTime(start=c.start, end=c.end, reason=c.reason) for c in found]
