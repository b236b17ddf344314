"""The write path's rules: `decide(states, command, policies)` gives a command's events, `evolve` folds one event."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import singledispatch
from typing import Any
from uuid import UUID

from domain import closing, sla
from domain import commands as cmd
from domain import customer as customers
from domain import events as ev
from domain import ticket as tickets
from domain.calendar import Clock, band_at, clock_for
from domain.closing import ClosedMonth
from domain.customer import Customer
from domain.durations import minutes
from domain.errors import (
    IllegalTransition,
    MonthNotEnded,
    NoPlanInForce,
    NotIncluded,
    TicketAlreadyOpened,
    TicketNotFound,
)
from domain.money import Month
from domain.policy import ClockKind, Policy, PolicyBook, Severity
from domain.sla import Metric, MetricState
from domain.targets import calendar_for, first_response_target
from domain.ticket import Ticket, TicketStatus

ENDED = frozenset({TicketStatus.CLOSED, TicketStatus.WITHDRAWN})
WATCHDOG_COMMANDS = (cmd.RecordSlaBreach, cmd.FlagSlaAtRisk)

# What one stream holds: a ticket, a customer's plans, a closed month; None for a stream with no events yet.
State = Ticket | Customer | ClosedMonth | None
# The states of the streams a command reads (see `streams_read`), by stream id.
States = Mapping[UUID, State]


# --- the streams a command reads, and folding their events ------------------------------------------------


def streams_read(command: cmd.Command) -> tuple[UUID, ...]:
    """The streams whose states `decide` needs: the command's own, and for an opening the customer's plans."""
    if isinstance(command, cmd.OpenTicket):
        return (command.ticket_id, cmd.customer_stream_id(command.customer_id))  # type: ignore[return-value]
    return (command.stream_id,)


def evolve(state: Any, event: ev.DomainEvent) -> State:
    """One event applied to the state of its stream."""
    if isinstance(event, ev.TicketEvent):
        return tickets.evolve(state, event)
    if isinstance(event, ev.PlanSubscribed):
        return customers.evolve(state, event)
    if isinstance(event, ev.MonthClosed):
        return closing.evolve(state, event)
    raise TypeError(f"no stream evolves by {type(event).__name__}")


def project(state: Any, events: Iterable[ev.DomainEvent]) -> State:
    """Events folded onto a state; the repository's projector function for every kind of stream."""
    for event in events:
        state = evolve(state, event)
    return state


# --- decide ----------------------------------------------------------------------------------------------


def decide(states: States, command: cmd.Command, policies: PolicyBook) -> list[ev.DomainEvent]:
    """The events a command decides on the states of the streams it reads; a DomainError says why not.

    `states` holds at least `streams_read(command)`, None for a stream with no events yet. A repeat decides
    nothing (an empty list).
    """
    return _decide(command, states, policies)


@singledispatch
def _decide(command: cmd.Command, states: States, policies: PolicyBook) -> list[ev.DomainEvent]:
    return _on_ticket(states[command.stream_id], command, policies)  # type: ignore[arg-type]


@_decide.register
def _(command: cmd.SubscribePlan, states: States, policies: PolicyBook) -> list[ev.DomainEvent]:
    """A subscription: the plan must exist in the policy in force when it starts."""
    stream = command.stream_id
    subscriber: Customer | None = states[stream]  # type: ignore[assignment]
    if subscriber is not None and command.is_repeat(subscriber.seen_commands, subscriber.command_digests):
        return []
    policies.in_force(command.occurred_at).check_source(command.type, command.source)
    policies.in_force(command.effective_from).plan(command.plan)
    return [
        ev.PlanSubscribed(
            **_heading(command, stream, (subscriber.version if subscriber else 0) + 1, 0, command.digest),
            customer_id=command.customer_id,
            plan=command.plan,
            effective_from=command.effective_from,
        )
    ]


@_decide.register
def _(command: cmd.CloseMonth, states: States, policies: PolicyBook) -> list[ev.DomainEvent]:
    """Close the month once it has ended; closing it again changes nothing."""
    policies.in_force(command.occurred_at).check_source(command.type, command.source)
    closed: ClosedMonth | None = states[command.stream_id]  # type: ignore[assignment]
    if closed is not None:
        command.is_repeat(closed.seen_commands, closed.command_digests)  # a reused id with another body is refused
        return []
    _refuse_before_end(command, policies)
    return [
        ev.MonthClosed(
            **_heading(command, command.stream_id, 1, 0, command.digest),
            month=command.month,
            closed_at=command.occurred_at,
        )
    ]


def month_end(month: Month, policies: PolicyBook) -> datetime:
    """The first instant after `month` in the calendar's zone: the month has ended from then on."""
    return month.next().first_instant(policies.latest.calendar.zone)


def _refuse_before_end(command: cmd.CloseMonth, policies: PolicyBook) -> None:
    ends = month_end(Month.parse(command.month), policies)
    if command.occurred_at < ends:
        raise MonthNotEnded(
            f"month {command.month} has not ended at {command.occurred_at.isoformat()}: "
            f"it can be closed from {ends.isoformat()} on"
        )


def _heading(command: cmd.Command, stream: UUID, version: int, index: int, digest: str | None) -> dict[str, Any]:
    """What every event carries about its stream position, its id and the command that decided it."""
    return {
        "originator_id": stream,
        "originator_version": version,
        "event_id": cmd.event_id(command.command_id, stream, index),
        "command_id": command.command_id,
        "command_digest": digest,
        "actor": command.actor,
        "occurred_at": command.occurred_at,
    }


@_decide.register
def _(command: cmd.OpenTicket, states: States, policies: PolicyBook) -> list[ev.DomainEvent]:
    existing: Ticket | None = states[command.ticket_id]  # type: ignore[assignment,index]
    subscriber: Customer | None = states[cmd.customer_stream_id(command.customer_id)]  # type: ignore[assignment]
    policy = policies.in_force(command.occurred_at)
    policy.check_source(command.type, command.source)
    if existing is not None:
        if command.is_repeat(existing.seen_commands, existing.command_digests):
            return []
        raise TicketAlreadyOpened(f"ticket {existing.id} for {command.source}:{command.reference} was already opened")
    plan_name = subscriber.plan_at(command.occurred_at) if subscriber else None
    if plan_name is None:
        raise NoPlanInForce(f"customer {command.customer_id} has no support plan at {command.occurred_at.isoformat()}")
    _check_included(policy, plan_name, command)
    target, clock = first_response_target(policy, plan_name, command.severity, command.language)
    draft = _Draft(None, command, command.customer_id, policy)
    first = draft.deadline(sla.start(sla.FIRST_RESPONSE, command.occurred_at, target, clock))
    draft.add(
        ev.Opened,
        source=command.source,
        reference=command.reference,
        department=command.department,
        channel=command.channel,
        severity=command.severity,
        language=command.language,
        subject=command.subject,
        plan=plan_name,
        policy_version=policy.version,
        band=band_at(calendar_for(policy), command.occurred_at),
        incident=policy.department(command.department).incident,
        target_minutes=minutes(target),
        clock=clock,
        deadlines=(first,),
    )
    return draft.events


def _check_included(policy: Policy, plan_name: str, command: cmd.OpenTicket) -> None:
    plan = policy.plan(plan_name)
    department = policy.department(command.department)
    if command.department not in plan.departments:
        raise NotIncluded(f"plan {plan_name} does not include department {command.department}")
    if command.channel == "phone" and not plan.phone_hotline:
        raise NotIncluded(f"plan {plan_name} does not include the telephone hotline ({command.department})")
    if command.channel == "phone" and not department.phone_hotline:
        raise NotIncluded(
            f"the telephone hotline takes only service disruptions; department {command.department} "
            f"tickets arrive through the ticket system (plan {plan_name})"
        )
    policy.language(command.language)


# --- commands on an existing ticket ----------------------------------------------------------------------


class _Draft:
    """Events decided so far for one command on one ticket; later steps see the ticket with them applied."""

    def __init__(self, current: Ticket | None, command: cmd.Command, customer_id: str, policy: Policy):
        self._ticket = current
        self._applied = 0
        self._version = current.version if current else 0
        self._digest: str | None = None
        self.command = command
        self.customer_id = customer_id
        self.policy = policy
        self.events: list[ev.TicketEvent] = []

    @property
    def at(self) -> datetime:
        return self.command.occurred_at

    @property
    def ticket(self) -> Ticket:
        """The ticket with the events drafted so far, folded only when a step asks: most commands decide one
        event, which the caller folds anyway."""
        while self._applied < len(self.events):
            self._ticket = tickets.evolve(self._ticket, self.events[self._applied])
            self._applied += 1
        return self._ticket  # type: ignore[return-value]

    def add(self, event_type: type[ev.TicketEvent], **fields: Any) -> None:
        if not self.events:
            self._digest = self.command.digest
        index = len(self.events)
        heading = _heading(self.command, self.command.ticket_id, self._version + index + 1, index, self._digest)
        self.events.append(
            event_type(**heading, ticket_id=self.command.ticket_id, customer_id=self.customer_id, **fields)
        )

    def clock_for(self, kind: ClockKind) -> Clock:
        return clock_for(kind, calendar_for(self.policy))

    def deadline(self, metric: Metric) -> ev.Deadline | None:
        """The metric planned on the policy's calendar, as an event carries it; None while paused with time left."""
        planned = sla.plan(metric, self.clock_for, self.policy.at_risk_share)
        if planned.due_at is None:
            return None
        return ev.Deadline(
            metric=planned.name,
            target_minutes=minutes(planned.target),
            clock=planned.clock,
            due_at=planned.due_at,
            at_risk_at=planned.at_risk_at,
            policy_version=self.policy.version,
        )

    def notice_breaches(self) -> None:
        """Record every open metric whose due time has passed: a breach is recorded once, when first noticed."""
        for metric in self.ticket.open_metrics():
            if sla.is_overdue(metric, self.at):
                self.add(
                    ev.SlaBreached,
                    metric=metric.name,
                    due_at=metric.due_at,
                    breached_at=metric.due_at,
                    noticed_by=self.command.type,
                    target_minutes=minutes(metric.target),
                    clock=metric.clock,
                    policy_version=self.policy.version,
                )


def _on_ticket(current: Ticket | None, command: cmd.TicketCommand, policies: PolicyBook) -> list[ev.DomainEvent]:
    """Guards common to all commands on a ticket, breaches noticed, then the command's own rule."""
    # Who may send it first: a forbidden command is refused outright, never parked waiting for its ticket.
    policy = policies.in_force(command.occurred_at) if current is None else policies.version(current.policy_version)
    policy.check_source(command.type, command.source)
    if current is None:
        raise TicketNotFound(f"no ticket {command.ticket_id}: it was never opened")
    if command.is_repeat(current.seen_commands, current.command_digests):
        return []
    if current.status in ENDED or (current.status is TicketStatus.RESOLVED and not _allowed_on_resolved(command)):
        if isinstance(command, WATCHDOG_COMMANDS):
            return []  # the watchdog raced a resolution: nothing left to watch
        raise IllegalTransition(_ended_message(current, command))
    draft = _Draft(current, command, current.customer_id, policy)
    draft.notice_breaches()
    _decide_on_ticket(command, draft)
    return draft.events  # type: ignore[return-value]


def _allowed_on_resolved(command: cmd.TicketCommand) -> bool:
    return isinstance(command, cmd.ReopenTicket | cmd.CloseTicket)


def _ended_message(ticket: Ticket, command: cmd.TicketCommand) -> str:
    if ticket.status is TicketStatus.RESOLVED:
        return f"ticket {ticket.id} is resolved: only ReopenTicket or CloseTicket apply, not {command.type}"
    return f"ticket {ticket.id} is {ticket.status.value}: nothing more happens to it ({command.type} refused)"


@singledispatch
def _decide_on_ticket(command: cmd.TicketCommand, draft: _Draft) -> None:
    raise IllegalTransition(f"unsupported command {type(command).__name__}")


def _require_status(draft: _Draft, *allowed: TicketStatus) -> None:
    status = draft.ticket.status
    if status not in allowed:
        wanted = " or ".join(s.value for s in allowed)
        raise IllegalTransition(f"ticket {draft.ticket.id} is {status.value}; {draft.command.type} needs it {wanted}")


def _set_severity(draft: _Draft, event_type: type[ev.TicketEvent], severity: Severity, **fields) -> None:
    """Record a severity change with the open metrics recomputed from the stretches they ran since opening.

    A shorter target may already have passed: that breach is noticed at once.
    """
    ticket = draft.ticket
    target, clock = first_response_target(draft.policy, ticket.plan, severity, ticket.language)
    retargeted = [sla.retarget(m, target, clock) for m in ticket.open_metrics()]
    draft.add(
        event_type,
        from_severity=ticket.severity,
        to_severity=severity,
        target_minutes=minutes(target),
        clock=clock,
        deadlines=tuple(d for d in map(draft.deadline, retargeted) if d is not None),
        **fields,
    )
    draft.notice_breaches()


@_decide_on_ticket.register
def _(command: cmd.EscalateTicket, draft: _Draft) -> None:
    ticket = draft.ticket
    plan = draft.policy.plan(ticket.plan)
    to_severity = command.to_severity or ticket.severity
    if command.to_severity is not None and to_severity.rank <= ticket.severity.rank:
        raise IllegalTransition(
            f"severity only rises through escalation: ticket {ticket.id} is {ticket.severity.value}, "
            f"not raised to {to_severity.value}; lower it with ChangeSeverity and a reason"
        )
    if command.escalation_phone and not plan.escalation_phone:
        raise NotIncluded(f"plan {ticket.plan} does not include the escalation phone")
    if command.to_severity is None and ticket.escalation_phone:
        raise IllegalTransition(f"ticket {ticket.id} is already with the escalation phone")
    _set_severity(draft, ev.Escalated, to_severity, escalation_phone=command.escalation_phone)


@_decide_on_ticket.register
def _(command: cmd.ChangeSeverity, draft: _Draft) -> None:
    ticket = draft.ticket
    if command.to_severity.rank >= ticket.severity.rank:
        raise IllegalTransition(
            f"ChangeSeverity only lowers: ticket {ticket.id} is {ticket.severity.value}; "
            f"raise it to {command.to_severity.value} with EscalateTicket"
        )
    _set_severity(draft, ev.SeverityChanged, command.to_severity, reason=command.reason)


@_decide_on_ticket.register
def _(command: cmd.RecordResponse, draft: _Draft) -> None:
    _require_status(draft, TicketStatus.OPEN, TicketStatus.AWAITING_CUSTOMER)
    met = tuple(m.name for m in draft.ticket.open_metrics())
    draft.add(ev.Responded, metrics_met=met)


@_decide_on_ticket.register
def _(command: cmd.RecordCustomerReply, draft: _Draft) -> None:
    if draft.ticket.status is TicketStatus.AWAITING_CUSTOMER:
        _resume(draft, "customer replied")
    ticket = draft.ticket
    waiting = any(m.name.startswith("next_response") for m in ticket.open_metrics())
    deadlines: tuple[ev.Deadline, ...] = ()
    if ticket.first_responded_at is not None and not waiting:
        deadlines = (_next_response_deadline(draft),)
    draft.add(ev.CustomerReplied, deadlines=deadlines)


def _next_response_deadline(draft: _Draft) -> ev.Deadline:
    ticket = draft.ticket
    name = sla.next_response(ticket.next_responses_started + 1)
    return draft.deadline(sla.start(name, draft.at, ticket.target, ticket.clock))


@_decide_on_ticket.register
def _(command: cmd.AwaitCustomer, draft: _Draft) -> None:
    _require_status(draft, TicketStatus.OPEN)
    paused = tuple(m.name for m in draft.ticket.running_metrics())
    draft.add(ev.AwaitingCustomer, reason=command.reason, metrics_paused=paused)


@_decide_on_ticket.register
def _(command: cmd.ResumeTicket, draft: _Draft) -> None:
    _require_status(draft, TicketStatus.AWAITING_CUSTOMER)
    _resume(draft, command.reason)


def _resume(draft: _Draft, reason: str) -> None:
    paused = [m for m in draft.ticket.metrics.values() if m.state is MetricState.PAUSED]
    resumed = [sla.resume(m, draft.at) for m in paused]
    draft.add(ev.Resumed, reason=reason, deadlines=tuple(map(draft.deadline, resumed)))


@_decide_on_ticket.register
def _(command: cmd.RequestCallback, draft: _Draft) -> None:
    ticket = draft.ticket
    if draft.policy.plan(ticket.plan).callbacks_per_month == 0:
        raise NotIncluded(f"plan {ticket.plan} does not include telephone callbacks")
    if ticket.pending_callback is not None:
        raise IllegalTransition(f"ticket {ticket.id} already has a callback pending")
    draft.add(ev.CallbackRequested, note=command.note)


@_decide_on_ticket.register
def _(command: cmd.CompleteCallback, draft: _Draft) -> None:
    pending = draft.ticket.pending_callback
    if pending is None:
        raise IllegalTransition(f"ticket {draft.ticket.id} has no callback requested")
    draft.add(ev.CallbackDone, requested_event_id=pending)


@_decide_on_ticket.register
def _(command: cmd.ResolveTicket, draft: _Draft) -> None:
    _require_status(draft, TicketStatus.OPEN, TicketStatus.AWAITING_CUSTOMER)
    met = tuple(m.name for m in draft.ticket.open_metrics())
    draft.add(ev.Resolved, resolution=command.resolution, metrics_met=met)


@_decide_on_ticket.register
def _(command: cmd.ReopenTicket, draft: _Draft) -> None:
    _require_status(draft, TicketStatus.RESOLVED)
    # A reopened ticket waits for an answer: a next-response clock starts.
    draft.add(ev.Reopened, reason=command.reason, deadlines=(_next_response_deadline(draft),))


@_decide_on_ticket.register
def _(command: cmd.CloseTicket, draft: _Draft) -> None:
    _require_status(draft, TicketStatus.RESOLVED)
    draft.add(ev.Closed)


@_decide_on_ticket.register
def _(command: cmd.WithdrawTicket, draft: _Draft) -> None:
    _require_status(draft, TicketStatus.OPEN, TicketStatus.AWAITING_CUSTOMER)
    ticket = draft.ticket
    draft.add(
        ev.Withdrawn,
        reason=command.reason,
        before_first_response=ticket.first_responded_at is None,
        metrics_cancelled=tuple(m.name for m in ticket.open_metrics()),
    )


def _watched_metric(draft: _Draft, name: str) -> Metric | None:
    metric = draft.ticket.metric(name)
    if metric is None:
        raise IllegalTransition(f"ticket {draft.ticket.id} has no SLA metric {name!r}")
    return metric if metric.state is MetricState.RUNNING else None


@_decide_on_ticket.register
def _(command: cmd.RecordSlaBreach, draft: _Draft) -> None:
    # Breaches already due were recorded by notice_breaches(); what is left is either not open or not due.
    metric = _watched_metric(draft, command.metric)
    if metric is not None and metric.due_at is not None and metric.due_at >= draft.at:
        raise IllegalTransition(
            f"{command.metric} of ticket {draft.ticket.id} is due at {metric.due_at.isoformat()} "
            "and breaches only after that"
        )


@_decide_on_ticket.register
def _(command: cmd.FlagSlaAtRisk, draft: _Draft) -> None:
    metric = _watched_metric(draft, command.metric)
    if metric is None or metric.at_risk_flagged:
        return
    if metric.at_risk_at > draft.at:
        raise IllegalTransition(
            f"{command.metric} of ticket {draft.ticket.id} is not at risk until {metric.at_risk_at.isoformat()}"
        )
    draft.add(ev.SlaAtRisk, metric=metric.name, at_risk_at=metric.at_risk_at, due_at=metric.due_at)
