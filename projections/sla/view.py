"""The SLA view of one ticket: the domain's own fold (`evolve`) plus the facts analysts read that it drops."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from domain import events as ev
from domain.durations import minutes
from domain.sla import Metric, MetricState
from domain.ticket import Ticket, TicketStatus, evolve

BERLIN = ZoneInfo("Europe/Berlin")


@dataclass(frozen=True, slots=True)
class SlaTicket:
    """What the view keeps per ticket to go on folding: the aggregate's state and a few facts of its events."""

    ticket: Ticket
    reference: str
    source: str
    resolved_at: datetime | None = None
    # When a breached metric got its answer at last (the first reply or resolution after the breach).
    answered_at: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TicketRow:
    ticket_id: str
    reference: str
    source: str
    customer_id: str
    plan: str
    department: str
    channel: str
    language: str
    severity: str
    status: TicketStatus
    opened_at: datetime
    resolved_at: datetime | None
    version: int


@dataclass(frozen=True, slots=True)
class MetricRow:
    ticket_id: str
    metric: str
    target_minutes: int
    clock: str
    started_at: datetime
    due_at: datetime | None
    at_risk_at: datetime | None
    at_risk_flagged: bool
    state: MetricState
    met_at: datetime | None
    breached_at: datetime | None
    answered_at: datetime | None
    minutes_late: int | None
    policy_version: str
    # The month (YYYY-MM, in the calendar's zone) in which the metric was met or breached: breach history groups by it.
    decided_month: str | None


_STATE = TypeAdapter(SlaTicket)


def fold(view: SlaTicket | None, event: ev.TicketEvent) -> SlaTicket:
    """One event applied, through the aggregate's own `evolve`, so the view cannot disagree with it."""
    # The view never decides commands, so the command ids the aggregate remembers would only bloat its state.
    ticket = evolve(view.ticket if view else None, event, remember_commands=False)
    if view is None:
        assert isinstance(event, ev.Opened)  # evolve only starts a ticket from its opening
        return SlaTicket(ticket=ticket, reference=event.reference, source=event.source)
    return SlaTicket(
        ticket=ticket, reference=view.reference, source=view.source, resolved_at=_resolved_at(view, event),
        answered_at=_answered(view, event),
    )  # fmt: skip


def _resolved_at(view: SlaTicket, event: ev.TicketEvent) -> datetime | None:
    if isinstance(event, ev.Resolved):
        return event.occurred_at
    if isinstance(event, ev.Reopened):
        return None
    return view.resolved_at


def _answered(view: SlaTicket, event: ev.TicketEvent) -> dict[str, datetime]:
    """A reply or a resolution answers every breached metric not yet answered: that ends its lateness."""
    if not isinstance(event, ev.Responded | ev.Resolved):
        return view.answered_at
    unanswered = [m.name for m in view.ticket.metrics.values() if _late_and_unanswered(m, view.answered_at)]
    return view.answered_at | {name: event.occurred_at for name in unanswered}


def _late_and_unanswered(metric: Metric, answered_at: dict[str, datetime]) -> bool:
    return metric.state is MetricState.BREACHED and metric.name not in answered_at


def ticket_row(view: SlaTicket) -> TicketRow:
    return TicketRow(*ticket_values(view))


def ticket_values(view: SlaTicket) -> tuple:
    """The ticket's row as a tuple in TicketRow's field order: what the projection writes, without the object."""
    ticket = view.ticket
    return (
        str(ticket.id), view.reference, view.source, ticket.customer_id, ticket.plan, ticket.department,
        ticket.channel, ticket.language, ticket.severity.value, ticket.status, ticket.opened_at, view.resolved_at,
        ticket.version,
    )  # fmt: skip


def metric_rows(view: SlaTicket, zone: ZoneInfo = BERLIN) -> list[MetricRow]:
    return [MetricRow(*values) for values in metric_values(view, zone)]


def metric_values(view: SlaTicket, zone: ZoneInfo = BERLIN) -> list[tuple]:
    """Each metric's row as a tuple in MetricRow's field order: what the projection writes, without the object."""
    ticket_id = str(view.ticket.id)
    return [_metric_values(view, ticket_id, metric, zone) for metric in view.ticket.metrics.values()]


def changed_metric_values(before: SlaTicket | None, view: SlaTicket, zone: ZoneInfo = BERLIN) -> list[tuple]:
    """The rows of the view's metrics whose row differs from the one `before` gives (every metric without it).

    States are immutable and the fold copies only the metrics an event changes: a metric object both states
    share, with the same answer time and policy version, gives the same row.
    """
    if before is None:
        return metric_values(view, zone)
    ticket_id = str(view.ticket.id)
    return [
        _metric_values(view, ticket_id, metric, zone)
        for metric in view.ticket.metrics.values()
        if _row_changed(before, view, metric)
    ]


def _row_changed(before: SlaTicket, view: SlaTicket, metric: Metric) -> bool:
    return (
        before.ticket.metrics.get(metric.name) is not metric
        or before.answered_at.get(metric.name) != view.answered_at.get(metric.name)
        or before.ticket.policy_version != view.ticket.policy_version
    )


def _metric_values(view: SlaTicket, ticket_id: str, metric: Metric, zone: ZoneInfo) -> tuple:
    met_at = metric.stopped_at if metric.state is MetricState.MET else None
    breached_at = metric.stopped_at if metric.state is MetricState.BREACHED else None
    answered_at = view.answered_at.get(metric.name)
    decided = met_at or breached_at
    return (
        ticket_id, metric.name, minutes(metric.target), metric.clock.value, metric.stretches[0].start,
        metric.due_at, metric.at_risk_at, metric.at_risk_flagged, metric.state, met_at, breached_at, answered_at,
        _minutes_late(metric, answered_at), view.ticket.policy_version,
        decided.astimezone(zone).strftime("%Y-%m") if decided else None,
    )  # fmt: skip


def _minutes_late(metric: Metric, answered_at: datetime | None) -> int | None:
    """Real minutes from the due time to the answer; unknown while a breached metric waits for one."""
    if metric.state is not MetricState.BREACHED or answered_at is None or metric.due_at is None:
        return None
    return minutes(answered_at - metric.due_at)


def dump_state(view: SlaTicket) -> str:
    return _STATE.dump_json(view).decode()


def load_state(text: str | bytes) -> SlaTicket:
    return _STATE.validate_json(text)
