"""The rules of the commands on an existing ticket, and the draft of a ticket's events; `rules.decide` uses them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from domain import commands as cmd
from domain import events as ev
from domain import sla
from domain import ticket as tickets
from domain.calendar import Clock, clock_for
from domain.durations import minutes
from domain.errors import IllegalTransition, NotIncluded, TicketNotFound
from domain.policy import ClockKind, Policy, PolicyBook, Severity
from domain.sla import Metric, MetricState
from domain.targets import calendar_for, first_response_target
from domain.ticket import Ticket, TicketStatus

ENDED = frozenset({TicketStatus.CLOSED, TicketStatus.WITHDRAWN})
WATCHDOG_COMMANDS = (cmd.RecordSlaBreach, cmd.FlagSlaAtRisk)


def event_heading(command: cmd.Command, stream: UUID, version: int, index: int, digest: str | None) -> dict[str, Any]:
    """What every event carries about its stream position, its id and the command that decided it."""
    return {
        "originator_id": stream,
        "originator_version": version,
        "event_id": cmd.event_id(command.command_id, stream, index),
        "command_id": command.command_id,
        "actor": command.actor,
        "occurred_at": command.occurred_at,
        "command_digest": digest,
    }


class Draft:
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
        heading = event_heading(self.command, self.command.ticket_id, self._version + index + 1, index, self._digest)
        self.events.append(
            event_type.trusted(**heading, ticket_id=self.command.ticket_id, customer_id=self.customer_id, **fields)
        )

    def clock_for(self, kind: ClockKind) -> Clock:
        return clock_for(kind, calendar_for(self.policy))

    def deadline(self, metric: Metric) -> ev.Deadline | None:
        """The metric planned on the policy's calendar, as an event carries it; None while paused with time left."""
        planned = sla.plan(metric, self.clock_for, self.policy.at_risk_share)
        if planned.due_at is None:
            return None
        return ev.Deadline.trusted(
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


def decide_on_ticket(current: Ticket | None, command: cmd.TicketCommand, policies: PolicyBook) -> list[ev.DomainEvent]:
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
    draft = Draft(current, command, current.customer_id, policy)
    draft.notice_breaches()
    _apply_rule(command, draft)
    return draft.events  # type: ignore[return-value]


def _allowed_on_resolved(command: cmd.TicketCommand) -> bool:
    return isinstance(command, cmd.ReopenTicket | cmd.CloseTicket)


def _ended_message(ticket: Ticket, command: cmd.TicketCommand) -> str:
    if ticket.status is TicketStatus.RESOLVED:
        return f"ticket {ticket.id} is resolved: only ReopenTicket or CloseTicket apply, not {command.type}"
    return f"ticket {ticket.id} is {ticket.status.value}: nothing more happens to it ({command.type} refused)"


TicketRule = Callable[[Any, "Draft"], None]
# The rule of each command type on an existing ticket; a dict, not singledispatch: looked up once per command.
_TICKET_RULES: dict[type[cmd.TicketCommand], TicketRule] = {}


def _rule_for(command_type: type[cmd.TicketCommand]) -> Callable[[TicketRule], TicketRule]:
    def register(rule: TicketRule) -> TicketRule:
        _TICKET_RULES[command_type] = rule
        return rule

    return register


def _apply_rule(command: cmd.TicketCommand, draft: Draft) -> None:
    rule = _TICKET_RULES.get(type(command))
    if rule is None:
        raise IllegalTransition(f"unsupported command {type(command).__name__}")
    rule(command, draft)


def _require_status(draft: Draft, *allowed: TicketStatus) -> None:
    status = draft.ticket.status
    if status not in allowed:
        wanted = " or ".join(s.value for s in allowed)
        raise IllegalTransition(f"ticket {draft.ticket.id} is {status.value}; {draft.command.type} needs it {wanted}")


def _set_severity(draft: Draft, event_type: type[ev.TicketEvent], severity: Severity, **fields) -> None:
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
        **fields,  # in the events' field order: escalation_phone or reason come before the target
        target_minutes=minutes(target),
        clock=clock,
        deadlines=tuple(d for d in map(draft.deadline, retargeted) if d is not None),
    )
    draft.notice_breaches()


@_rule_for(cmd.EscalateTicket)
def _(command: cmd.EscalateTicket, draft: Draft) -> None:
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


@_rule_for(cmd.ChangeSeverity)
def _(command: cmd.ChangeSeverity, draft: Draft) -> None:
    ticket = draft.ticket
    if command.to_severity.rank >= ticket.severity.rank:
        raise IllegalTransition(
            f"ChangeSeverity only lowers: ticket {ticket.id} is {ticket.severity.value}; "
            f"raise it to {command.to_severity.value} with EscalateTicket"
        )
    _set_severity(draft, ev.SeverityChanged, command.to_severity, reason=command.reason)


@_rule_for(cmd.RecordResponse)
def _(command: cmd.RecordResponse, draft: Draft) -> None:
    _require_status(draft, TicketStatus.OPEN, TicketStatus.AWAITING_CUSTOMER)
    met = tuple(m.name for m in draft.ticket.open_metrics())
    draft.add(ev.Responded, metrics_met=met)


@_rule_for(cmd.RecordCustomerReply)
def _(command: cmd.RecordCustomerReply, draft: Draft) -> None:
    if draft.ticket.status is TicketStatus.AWAITING_CUSTOMER:
        _resume(draft, "customer replied")
    ticket = draft.ticket
    waiting = any(m.name.startswith("next_response") for m in ticket.open_metrics())
    deadlines: tuple[ev.Deadline, ...] = ()
    if ticket.first_responded_at is not None and not waiting:
        deadlines = (_next_response_deadline(draft),)
    draft.add(ev.CustomerReplied, deadlines=deadlines)


def _next_response_deadline(draft: Draft) -> ev.Deadline:
    ticket = draft.ticket
    name = sla.next_response(ticket.next_responses_started + 1)
    return draft.deadline(sla.start(name, draft.at, ticket.target, ticket.clock))


@_rule_for(cmd.AwaitCustomer)
def _(command: cmd.AwaitCustomer, draft: Draft) -> None:
    _require_status(draft, TicketStatus.OPEN)
    paused = tuple(m.name for m in draft.ticket.running_metrics())
    draft.add(ev.AwaitingCustomer, reason=command.reason, metrics_paused=paused)


@_rule_for(cmd.ResumeTicket)
def _(command: cmd.ResumeTicket, draft: Draft) -> None:
    _require_status(draft, TicketStatus.AWAITING_CUSTOMER)
    _resume(draft, command.reason)


def _resume(draft: Draft, reason: str) -> None:
    paused = [m for m in draft.ticket.metrics.values() if m.state is MetricState.PAUSED]
    resumed = [sla.resume(m, draft.at) for m in paused]
    draft.add(ev.Resumed, reason=reason, deadlines=tuple(map(draft.deadline, resumed)))


@_rule_for(cmd.RequestCallback)
def _(command: cmd.RequestCallback, draft: Draft) -> None:
    ticket = draft.ticket
    if draft.policy.plan(ticket.plan).callbacks_per_month == 0:
        raise NotIncluded(f"plan {ticket.plan} does not include telephone callbacks")
    if ticket.pending_callback is not None:
        raise IllegalTransition(f"ticket {ticket.id} already has a callback pending")
    draft.add(ev.CallbackRequested, note=command.note)


@_rule_for(cmd.CompleteCallback)
def _(command: cmd.CompleteCallback, draft: Draft) -> None:
    pending = draft.ticket.pending_callback
    if pending is None:
        raise IllegalTransition(f"ticket {draft.ticket.id} has no callback requested")
    draft.add(ev.CallbackDone, requested_event_id=pending)


@_rule_for(cmd.ResolveTicket)
def _(command: cmd.ResolveTicket, draft: Draft) -> None:
    _require_status(draft, TicketStatus.OPEN, TicketStatus.AWAITING_CUSTOMER)
    met = tuple(m.name for m in draft.ticket.open_metrics())
    draft.add(ev.Resolved, resolution=command.resolution, metrics_met=met)


@_rule_for(cmd.ReopenTicket)
def _(command: cmd.ReopenTicket, draft: Draft) -> None:
    _require_status(draft, TicketStatus.RESOLVED)
    # A reopened ticket waits for an answer: a next-response clock starts.
    draft.add(ev.Reopened, reason=command.reason, deadlines=(_next_response_deadline(draft),))


@_rule_for(cmd.CloseTicket)
def _(command: cmd.CloseTicket, draft: Draft) -> None:
    _require_status(draft, TicketStatus.RESOLVED)
    draft.add(ev.Closed)


@_rule_for(cmd.WithdrawTicket)
def _(command: cmd.WithdrawTicket, draft: Draft) -> None:
    _require_status(draft, TicketStatus.OPEN, TicketStatus.AWAITING_CUSTOMER)
    ticket = draft.ticket
    draft.add(
        ev.Withdrawn,
        reason=command.reason,
        before_first_response=ticket.first_responded_at is None,
        metrics_cancelled=tuple(m.name for m in ticket.open_metrics()),
    )


def _watched_metric(draft: Draft, name: str) -> Metric | None:
    metric = draft.ticket.metric(name)
    if metric is None:
        raise IllegalTransition(f"ticket {draft.ticket.id} has no SLA metric {name!r}")
    return metric if metric.state is MetricState.RUNNING else None


@_rule_for(cmd.RecordSlaBreach)
def _(command: cmd.RecordSlaBreach, draft: Draft) -> None:
    # Breaches already due were recorded by notice_breaches(); what is left is either not open or not due.
    metric = _watched_metric(draft, command.metric)
    if metric is not None and metric.due_at is not None and metric.due_at >= draft.at:
        raise IllegalTransition(
            f"{command.metric} of ticket {draft.ticket.id} is due at {metric.due_at.isoformat()} "
            "and breaches only after that"
        )


@_rule_for(cmd.FlagSlaAtRisk)
def _(command: cmd.FlagSlaAtRisk, draft: Draft) -> None:
    metric = _watched_metric(draft, command.metric)
    if metric is None or metric.at_risk_flagged:
        return
    if metric.at_risk_at > draft.at:
        raise IllegalTransition(
            f"{command.metric} of ticket {draft.ticket.id} is not at risk until {metric.at_risk_at.isoformat()}"
        )
    draft.add(ev.SlaAtRisk, metric=metric.name, at_risk_at=metric.at_risk_at, due_at=metric.due_at)
