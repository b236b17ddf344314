"""The write path's rules: `decide(states, command, policies)` gives a command's events, `evolve` folds one event."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from domain import closing, sla
from domain import commands as cmd
from domain import customer as customers
from domain import events as ev
from domain import ticket as tickets
from domain.calendar import band_at
from domain.closing import ClosedMonth
from domain.customer import Customer
from domain.durations import minutes
from domain.errors import (
    MonthNotEnded,
    NoPlanInForce,
    NotIncluded,
    TicketAlreadyOpened,
)
from domain.money import Month
from domain.policy import Policy, PolicyBook
from domain.targets import calendar_for, first_response_target
from domain.ticket import Ticket
from domain.ticket_rules import Draft, decide_on_ticket, event_heading

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
    decide_stream = _STREAM_RULES.get(type(command))
    if decide_stream is None:
        return decide_on_ticket(states[command.stream_id], command, policies)  # type: ignore[arg-type]
    return decide_stream(command, states, policies)


def _subscribe(command: cmd.SubscribePlan, states: States, policies: PolicyBook) -> list[ev.DomainEvent]:
    """A subscription: the plan must exist in the policy in force when it starts."""
    stream = command.stream_id
    subscriber: Customer | None = states[stream]  # type: ignore[assignment]
    if subscriber is not None and command.is_repeat(subscriber.seen_commands, subscriber.command_digests):
        return []
    policies.in_force(command.occurred_at).check_source(command.type, command.source)
    policies.in_force(command.effective_from).plan(command.plan)
    return [
        ev.PlanSubscribed.trusted(
            **event_heading(command, stream, (subscriber.version if subscriber else 0) + 1, 0, command.digest),
            customer_id=command.customer_id,
            plan=command.plan,
            effective_from=command.effective_from,
        )
    ]


def _close_month(command: cmd.CloseMonth, states: States, policies: PolicyBook) -> list[ev.DomainEvent]:
    """Close the month once it has ended; closing it again changes nothing."""
    policies.in_force(command.occurred_at).check_source(command.type, command.source)
    closed: ClosedMonth | None = states[command.stream_id]  # type: ignore[assignment]
    if closed is not None:
        command.is_repeat(closed.seen_commands, closed.command_digests)  # a reused id with another body is refused
        return []
    _refuse_before_end(command, policies)
    return [
        ev.MonthClosed.trusted(
            **event_heading(command, command.stream_id, 1, 0, command.digest),
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


def _open(command: cmd.OpenTicket, states: States, policies: PolicyBook) -> list[ev.DomainEvent]:
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
    draft = Draft(None, command, command.customer_id, policy)
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


StreamRule = Callable[[Any, States, PolicyBook], list[ev.DomainEvent]]
# Commands that start or change a stream of their own kind; every other command acts on an existing ticket.
_STREAM_RULES: dict[type[cmd.Command], StreamRule] = {
    cmd.SubscribePlan: _subscribe,
    cmd.CloseMonth: _close_month,
    cmd.OpenTicket: _open,
}
