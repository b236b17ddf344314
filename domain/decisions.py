"""Decide functions: a ticket's state and one command in, the new events out (or a DomainError saying why not)."""

from __future__ import annotations

from functools import singledispatch

from domain import commands as cmd
from domain import events as ev
from domain import sla
from domain.calendar import band_at
from domain.decision import Decision
from domain.errors import IllegalTransition, NoPlanInForce, NotIncluded, TicketAlreadyOpened, TicketNotFound
from domain.policy import Policy, PolicyBook, Severity
from domain.sla import Metric, MetricState
from domain.targets import calendar_for, first_response_target
from domain.ticket import Ticket, TicketStatus

ENDED = frozenset({TicketStatus.CLOSED, TicketStatus.WITHDRAWN})
WATCHDOG_COMMANDS = (cmd.RecordSlaBreach, cmd.FlagSlaAtRisk)


# The events decided and the state they lead to, so a caller need not fold them again.
Decided = tuple[list[ev.TicketEvent], Ticket | None]


def decide_open_with_state(
    existing: Ticket | None, command: cmd.OpenTicket, plan_name: str | None, book: PolicyBook
) -> Decided:
    policy = book.in_force(command.occurred_at)
    policy.check_source(command.type, command.source)
    if existing is not None:
        if command.is_repeat(existing.seen_commands, existing.command_digests):
            return [], existing
        raise TicketAlreadyOpened(f"ticket {existing.id} for {command.source}:{command.reference} was already opened")
    if plan_name is None:
        raise NoPlanInForce(f"customer {command.customer_id} has no support plan at {command.occurred_at.isoformat()}")
    _check_included(policy, plan_name, command)
    target, clock = first_response_target(policy, plan_name, command.severity, command.language)
    decision = Decision(None, command, command.customer_id, policy)
    first = decision.deadline(sla.start(sla.FIRST_RESPONSE, command.occurred_at, target, clock))
    decision.add(
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
        target_minutes=int(target.total_seconds() // 60),
        clock=clock,
        deadlines=(first,),
    )
    return decision.events, decision.ticket


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


def decide(ticket: Ticket | None, command: cmd.TicketCommand, book: PolicyBook) -> list[ev.TicketEvent]:
    """Decide a command on an existing ticket: guards common to all, breaches noticed, then the command."""
    return decide_with_state(ticket, command, book)[0]


def decide_with_state(ticket: Ticket | None, command: cmd.TicketCommand, book: PolicyBook) -> Decided:
    # Who may send it first: a forbidden command is refused outright, never parked waiting for its ticket.
    (book.in_force(command.occurred_at) if ticket is None else book.version(ticket.policy_version)).check_source(
        command.type, command.source
    )
    if ticket is None:
        raise TicketNotFound(f"no ticket {command.ticket_id}: it was never opened")
    if command.is_repeat(ticket.seen_commands, ticket.command_digests):
        return [], ticket
    if ticket.status in ENDED or (ticket.status is TicketStatus.RESOLVED and not _allowed_on_resolved(command)):
        if isinstance(command, WATCHDOG_COMMANDS):
            return [], ticket  # the watchdog raced a resolution: nothing left to watch
        raise IllegalTransition(_ended_message(ticket, command))
    decision = Decision(ticket, command, ticket.customer_id, book.version(ticket.policy_version))
    decision.notice_breaches()
    _decide(command, decision)
    return decision.events, decision.ticket


def _allowed_on_resolved(command: cmd.TicketCommand) -> bool:
    return isinstance(command, cmd.ReopenTicket | cmd.CloseTicket)


def _ended_message(ticket: Ticket, command: cmd.TicketCommand) -> str:
    if ticket.status is TicketStatus.RESOLVED:
        return f"ticket {ticket.id} is resolved: only ReopenTicket or CloseTicket apply, not {command.type}"
    return f"ticket {ticket.id} is {ticket.status.value}: nothing more happens to it ({command.type} refused)"


@singledispatch
def _decide(command: cmd.TicketCommand, decision: Decision) -> None:
    raise IllegalTransition(f"unsupported command {type(command).__name__}")


def _require_status(decision: Decision, *allowed: TicketStatus) -> None:
    status = decision.ticket.status
    if status not in allowed:
        wanted = " or ".join(s.value for s in allowed)
        raise IllegalTransition(
            f"ticket {decision.ticket.id} is {status.value}; {decision.command.type} needs it {wanted}"
        )


def _set_severity(decision: Decision, event_type: type[ev.TicketEvent], severity: Severity, **fields) -> None:
    """Record a severity change with the open metrics recomputed from the stretches they ran since opening.

    A shorter target may already have passed: that breach is noticed at once.
    """
    ticket = decision.ticket
    target, clock = first_response_target(decision.policy, ticket.plan, severity, ticket.language)
    retargeted = [sla.retarget(m, target, clock) for m in ticket.open_metrics()]
    decision.add(
        event_type,
        from_severity=ticket.severity,
        to_severity=severity,
        target_minutes=int(target.total_seconds() // 60),
        clock=clock,
        deadlines=tuple(d for d in map(decision.deadline, retargeted) if d is not None),
        **fields,
    )
    decision.notice_breaches()


@_decide.register
def _(command: cmd.EscalateTicket, decision: Decision) -> None:
    ticket = decision.ticket
    plan = decision.policy.plan(ticket.plan)
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
    _set_severity(decision, ev.Escalated, to_severity, escalation_phone=command.escalation_phone)


@_decide.register
def _(command: cmd.ChangeSeverity, decision: Decision) -> None:
    ticket = decision.ticket
    if command.to_severity.rank >= ticket.severity.rank:
        raise IllegalTransition(
            f"ChangeSeverity only lowers: ticket {ticket.id} is {ticket.severity.value}; "
            f"raise it to {command.to_severity.value} with EscalateTicket"
        )
    _set_severity(decision, ev.SeverityChanged, command.to_severity, reason=command.reason)


@_decide.register
def _(command: cmd.RecordResponse, decision: Decision) -> None:
    _require_status(decision, TicketStatus.OPEN, TicketStatus.AWAITING_CUSTOMER)
    met = tuple(m.name for m in decision.ticket.open_metrics())
    decision.add(ev.Responded, metrics_met=met)


@_decide.register
def _(command: cmd.RecordCustomerReply, decision: Decision) -> None:
    if decision.ticket.status is TicketStatus.AWAITING_CUSTOMER:
        _resume(decision, "customer replied")
    ticket = decision.ticket
    waiting = any(m.name.startswith("next_response") for m in ticket.open_metrics())
    deadlines: tuple[ev.Deadline, ...] = ()
    if ticket.first_responded_at is not None and not waiting:
        deadlines = (_next_response_deadline(decision),)
    decision.add(ev.CustomerReplied, deadlines=deadlines)


def _next_response_deadline(decision: Decision) -> ev.Deadline:
    ticket = decision.ticket
    name = sla.next_response(ticket.next_responses_started + 1)
    return decision.deadline(sla.start(name, decision.at, ticket.target, ticket.clock))


@_decide.register
def _(command: cmd.AwaitCustomer, decision: Decision) -> None:
    _require_status(decision, TicketStatus.OPEN)
    paused = tuple(m.name for m in decision.ticket.running_metrics())
    decision.add(ev.AwaitingCustomer, reason=command.reason, metrics_paused=paused)


@_decide.register
def _(command: cmd.ResumeTicket, decision: Decision) -> None:
    _require_status(decision, TicketStatus.AWAITING_CUSTOMER)
    _resume(decision, command.reason)


def _resume(decision: Decision, reason: str) -> None:
    paused = [m for m in decision.ticket.metrics.values() if m.state is MetricState.PAUSED]
    resumed = [sla.resume(m, decision.at) for m in paused]
    decision.add(ev.Resumed, reason=reason, deadlines=tuple(map(decision.deadline, resumed)))


@_decide.register
def _(command: cmd.RequestCallback, decision: Decision) -> None:
    ticket = decision.ticket
    if decision.policy.plan(ticket.plan).callbacks_per_month == 0:
        raise NotIncluded(f"plan {ticket.plan} does not include telephone callbacks")
    if ticket.pending_callback is not None:
        raise IllegalTransition(f"ticket {ticket.id} already has a callback pending")
    decision.add(ev.CallbackRequested, note=command.note)


@_decide.register
def _(command: cmd.CompleteCallback, decision: Decision) -> None:
    pending = decision.ticket.pending_callback
    if pending is None:
        raise IllegalTransition(f"ticket {decision.ticket.id} has no callback requested")
    decision.add(ev.CallbackDone, requested_event_id=pending)


@_decide.register
def _(command: cmd.ResolveTicket, decision: Decision) -> None:
    _require_status(decision, TicketStatus.OPEN, TicketStatus.AWAITING_CUSTOMER)
    met = tuple(m.name for m in decision.ticket.open_metrics())
    decision.add(ev.Resolved, resolution=command.resolution, metrics_met=met)


@_decide.register
def _(command: cmd.ReopenTicket, decision: Decision) -> None:
    _require_status(decision, TicketStatus.RESOLVED)
    # A reopened ticket waits for an answer: a next-response clock starts.
    decision.add(ev.Reopened, reason=command.reason, deadlines=(_next_response_deadline(decision),))


@_decide.register
def _(command: cmd.CloseTicket, decision: Decision) -> None:
    _require_status(decision, TicketStatus.RESOLVED)
    decision.add(ev.Closed)


@_decide.register
def _(command: cmd.WithdrawTicket, decision: Decision) -> None:
    _require_status(decision, TicketStatus.OPEN, TicketStatus.AWAITING_CUSTOMER)
    ticket = decision.ticket
    decision.add(
        ev.Withdrawn,
        reason=command.reason,
        before_first_response=ticket.first_responded_at is None,
        metrics_cancelled=tuple(m.name for m in ticket.open_metrics()),
    )


def _watched_metric(decision: Decision, name: str) -> Metric | None:
    metric = decision.ticket.metric(name)
    if metric is None:
        raise IllegalTransition(f"ticket {decision.ticket.id} has no SLA metric {name!r}")
    return metric if metric.state is MetricState.RUNNING else None


@_decide.register
def _(command: cmd.RecordSlaBreach, decision: Decision) -> None:
    # Breaches already due were recorded by notice_breaches(); what is left is either not open or not due.
    metric = _watched_metric(decision, command.metric)
    if metric is not None and metric.due_at is not None and metric.due_at >= decision.at:
        raise IllegalTransition(
            f"{command.metric} of ticket {decision.ticket.id} is due at {metric.due_at.isoformat()} "
            "and breaches only after that"
        )


@_decide.register
def _(command: cmd.FlagSlaAtRisk, decision: Decision) -> None:
    metric = _watched_metric(decision, command.metric)
    if metric is None or metric.at_risk_flagged:
        return
    if metric.at_risk_at > decision.at:
        raise IllegalTransition(
            f"{command.metric} of ticket {decision.ticket.id} is not at risk until {metric.at_risk_at.isoformat()}"
        )
    decision.add(ev.SlaAtRisk, metric=metric.name, at_risk_at=metric.at_risk_at, due_at=metric.due_at)
