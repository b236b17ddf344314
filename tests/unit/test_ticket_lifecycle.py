"""SPEC section 4: a ticket opens once, commands apply once, severity rises by escalation only, ends are final."""

from __future__ import annotations

from uuid import uuid4

import pytest

from consumers.write_side import WriteSide
from domain import events as ev
from domain.commands import parse_command, ticket_id_for
from domain.errors import TicketNotFound
from domain.policy import Severity
from domain.rules import decide
from domain.ticket import TicketStatus
from tests.unit.builders import (
    ACTOR,
    TICKET_COMMANDS,
    TicketStory,
    at,
    await_customer,
    change_severity,
    close,
    complete_callback,
    customer_reply,
    escalate,
    flag_at_risk,
    new_desk,
    open_ticket,
    opened,
    record_breach,
    reopen,
    request_callback,
    resolve,
    respond,
    resume,
    shipped_book,
    subscribe,
    unique,
    withdraw,
)

OPENED_AT = "2026-03-02T10:00+01:00"
LATER = "2026-03-02T10:30+01:00"
WATCHDOG = {"RecordSlaBreach", "FlagSlaAtRisk"}

# --- opened once ---------------------------------------------------------------------------------------------


def test_the_ticket_id_is_derived_from_the_publishing_systems_reference():
    ticket = opened()
    command = ticket.opening.command

    assert ticket.id == ticket_id_for(command.source, command.reference)
    assert [e.ticket_id for e in ticket.opening.events] == [ticket.id]


def test_a_repeated_open_with_the_same_command_id_changes_nothing():
    ticket = opened()

    again = ticket.send(ticket.opening.command)

    assert (again.status, again.events) == ("unchanged", ())
    assert len(ticket.events()) == 1


def test_a_second_open_of_the_same_reference_is_refused():
    ticket = opened()
    first = ticket.opening.command

    again = ticket.send(first.model_copy(update={"command_id": uuid4(), "occurred_at": at(LATER)}))

    assert again.status == "refused" and "already opened" in again.reason
    assert len(ticket.events()) == 1


def test_a_command_for_a_ticket_never_opened_is_refused():
    outcome = new_desk().handle(respond(ticket_id_for("portal", "never"), LATER))

    assert outcome.status == "refused" and "never opened" in outcome.reason


def test_decide_without_a_ticket_raises_ticket_not_found():
    never = ticket_id_for("portal", "never")
    with pytest.raises(TicketNotFound):
        decide({never: None}, respond(never, LATER), shipped_book())


# --- every command applies once -----------------------------------------------------------------------------


def _fresh(severity: str = "C") -> TicketStory:
    return opened(plan="standard", severity=severity, at=OPENED_AT)


def _prepared(*steps) -> TicketStory:
    """A standard C ticket opened at 10:00 that went through `steps` (builders of (ticket_id, when))."""
    ticket = _fresh()
    for minute, step in enumerate(steps, start=1):
        outcome = ticket.send(step(ticket.id, f"2026-03-02T10:{minute:02d}+01:00"))
        assert outcome.status == "applied", outcome.reason
    return ticket


# Each command where it applies: (steps before, the command); times are late enough for the watchdog.
ONCE = {
    "EscalateTicket": ((), lambda t: escalate(t, LATER, to="B")),
    "ChangeSeverity": ((lambda t, w: escalate(t, w, to="A"),), lambda t: change_severity(t, LATER, to="B")),
    "RecordResponse": ((), lambda t: respond(t, LATER)),
    "RecordCustomerReply": ((respond,), lambda t: customer_reply(t, LATER)),
    "AwaitCustomer": ((), lambda t: await_customer(t, LATER)),
    "ResumeTicket": ((await_customer,), lambda t: resume(t, LATER)),
    "RequestCallback": ((), lambda t: request_callback(t, LATER)),
    "CompleteCallback": ((request_callback,), lambda t: complete_callback(t, LATER)),
    "ResolveTicket": ((), lambda t: resolve(t, LATER)),
    "ReopenTicket": ((resolve,), lambda t: reopen(t, LATER)),
    "CloseTicket": ((resolve,), lambda t: close(t, LATER)),
    "WithdrawTicket": ((), lambda t: withdraw(t, LATER)),
    "RecordSlaBreach": ((), lambda t: record_breach(t, "2026-03-02T15:00+01:00")),
    "FlagSlaAtRisk": ((), lambda t: flag_at_risk(t, "2026-03-02T13:30+01:00")),
}


@pytest.mark.parametrize("name", ONCE)
def test_a_command_seen_twice_changes_nothing_the_second_time(name):
    steps, build = ONCE[name]
    ticket = _prepared(*steps)
    command = build(ticket.id)

    first, second = ticket.send(command), ticket.send(command)

    assert first.status == "applied", first.reason
    assert (second.status, second.events) == ("unchanged", ())
    assert ticket.state.version == len(ticket.events())


def test_a_command_id_reused_for_another_command_is_refused_as_a_conflicting_repeat():
    # Once this was "unchanged": the resolution vanished silently. A command id names one command, so the
    # publisher's mistake is now refused and reaches the dead-letter topic with its own kind.
    ticket = _fresh()
    response = respond(ticket.id, LATER)
    ticket.send(response)

    outcome = ticket.send(resolve(ticket.id, "2026-03-02T11:00+01:00", command_id=response.command_id))

    assert (outcome.status, outcome.kind) == ("refused", "conflicting-repeat")
    assert response.command_id.hex in outcome.reason.replace("-", "")
    assert ticket.state.status is TicketStatus.OPEN


def test_the_same_command_sent_again_is_unchanged_even_with_another_offset_for_its_instant():
    ticket = _fresh()
    response = respond(ticket.id, LATER)
    ticket.send(response)
    as_published = {**response.model_dump(mode="json"), "occurred_at": "2026-03-02T10:30:00+01:00"}
    same_instant = parse_command(as_published)
    assert same_instant.occurred_at == response.occurred_at

    assert ticket.send(same_instant).status == "unchanged"


def test_a_repeated_close_of_a_closed_ticket_is_unchanged_not_refused():
    ticket = _prepared(resolve)
    closing = close(ticket.id, LATER)
    ticket.send(closing)

    assert ticket.send(closing).status == "unchanged"


def test_the_same_command_twice_in_one_batch_applies_once():
    ticket = _fresh()
    command = respond(ticket.id, LATER)

    outcomes = WriteSide(ticket.desk).handle_batch([command, command])

    assert [o.status for o in outcomes] == ["applied", "unchanged"]
    assert len(ticket.events()) == 2


def test_decide_is_pure_the_same_state_and_command_give_the_same_events():
    ticket = _fresh()
    state, command = ticket.state, escalate(ticket.id, LATER, to="A")

    states = {ticket.id: state}
    assert decide(states, command, shipped_book()) == decide(states, command, shipped_book())
    assert ticket.state == state  # deciding stored nothing


# --- severity: rises only through escalation, lowers only with a reason --------------------------------------

ESCALATIONS = [
    ("C", "B", "applied"),
    ("B", "A", "applied"),
    ("C", "A", "applied"),
    ("A", "B", "refused"),
    ("A", "C", "refused"),
    ("B", "C", "refused"),
    ("C", "C", "refused"),
    ("A", "A", "refused"),
]


@pytest.mark.parametrize(("start", "to", "status"), ESCALATIONS)
def test_escalation_only_raises_the_severity(start, to, status):
    ticket = _fresh(severity=start)

    outcome = ticket.send(escalate(ticket.id, LATER, to=to))

    assert outcome.status == status, outcome.reason
    if status == "applied":
        (event,) = outcome.events
        assert isinstance(event, ev.Escalated) and (event.from_severity, event.to_severity) == (start, to)
        assert ticket.state.severity == ticket.state.highest_severity == to
    else:
        assert "ChangeSeverity" in outcome.reason
        assert ticket.state.severity == start


def test_escalation_goes_c_to_b_to_a():
    ticket = _fresh(severity="C")

    to_b = ticket.send(escalate(ticket.id, LATER, to="B"))
    to_a = ticket.send(escalate(ticket.id, "2026-03-02T10:45+01:00", to="A"))

    assert [(s.events[0].from_severity, s.events[0].to_severity) for s in (to_b, to_a)] == [("C", "B"), ("B", "A")]


LOWERINGS = [
    ("A", "B", "applied"),
    ("A", "C", "applied"),
    ("B", "C", "applied"),
    ("C", "B", "refused"),
    ("B", "A", "refused"),
    ("C", "A", "refused"),
    ("B", "B", "refused"),
]


@pytest.mark.parametrize(("start", "to", "status"), LOWERINGS)
def test_change_severity_only_lowers_and_records_its_reason(start, to, status):
    ticket = _fresh(severity=start)

    outcome = ticket.send(change_severity(ticket.id, LATER, to=to, reason="only the staging shop is down"))

    assert outcome.status == status, outcome.reason
    if status == "applied":
        (event,) = outcome.events
        assert isinstance(event, ev.SeverityChanged)
        assert (event.from_severity, event.to_severity, event.reason) == (start, to, "only the staging shop is down")
    else:
        assert "EscalateTicket" in outcome.reason


def test_lowering_keeps_the_highest_severity_reached():
    ticket = _fresh(severity="C")
    ticket.send(escalate(ticket.id, LATER, to="A"))

    ticket.send(change_severity(ticket.id, "2026-03-02T10:45+01:00", to="C"))

    assert (ticket.state.severity, ticket.state.highest_severity) == (Severity.C, Severity.A)


@pytest.mark.parametrize(
    ("plan", "status"),
    [("basic", "refused"), ("plus", "refused"), ("standard", "refused"), ("professional", "applied")],
)
def test_the_escalation_phone_is_only_on_professional(plan, status):
    ticket = opened(plan=plan, severity="A", at=OPENED_AT)

    outcome = ticket.send(escalate(ticket.id, LATER, phone=True))

    assert outcome.status == status, outcome.reason
    if status == "refused":
        assert plan in outcome.reason and "escalation phone" in outcome.reason
    else:
        (event,) = outcome.events
        assert event.escalation_phone and event.from_severity == event.to_severity == "A"
        assert ticket.state.escalation_phone


def test_a_ticket_is_handed_to_the_escalation_phone_once():
    ticket = opened(plan="professional", severity="B", at=OPENED_AT)
    ticket.send(escalate(ticket.id, LATER, phone=True))

    again = ticket.send(escalate(ticket.id, "2026-03-02T10:45+01:00", phone=True))
    raised = ticket.send(escalate(ticket.id, "2026-03-02T10:50+01:00", to="A", phone=True))

    assert again.status == "refused" and "already" in again.reason
    assert raised.status == "applied" and ticket.state.severity == "A"


def test_severity_and_escalation_phone_together_on_professional():
    ticket = opened(plan="professional", severity="C", at=OPENED_AT)

    (event,) = ticket.send(escalate(ticket.id, LATER, to="A", phone=True)).events

    assert (event.to_severity, event.escalation_phone) == ("A", True)


# --- resolved, closed and withdrawn tickets ---------------------------------------------------------------


@pytest.mark.parametrize("name", TICKET_COMMANDS)
def test_nothing_but_reopen_or_close_on_a_resolved_ticket(name):
    ticket = _prepared(resolve)

    outcome = ticket.send(TICKET_COMMANDS[name](ticket.id, "2026-03-02T11:00+01:00"))

    if name in {"ReopenTicket", "CloseTicket"}:
        assert outcome.status == "applied", outcome.reason
    elif name in WATCHDOG:
        assert outcome.status == "unchanged"  # the watchdog raced the resolution: nothing left to watch
    else:
        assert outcome.status == "refused" and "resolved" in outcome.reason


@pytest.mark.parametrize("ending", [(resolve, close), (withdraw,)], ids=["closed", "withdrawn"])
@pytest.mark.parametrize("name", TICKET_COMMANDS)
def test_nothing_at_all_on_a_closed_or_withdrawn_ticket(name, ending):
    ticket = _prepared(*ending)
    before = len(ticket.events())

    outcome = ticket.send(TICKET_COMMANDS[name](ticket.id, "2026-03-03T11:00+01:00"))

    assert outcome.status == ("unchanged" if name in WATCHDOG else "refused"), outcome.reason
    assert len(ticket.events()) == before


def test_withdrawn_before_the_first_response():
    ticket = _fresh()

    (event,) = ticket.send(withdraw(ticket.id, LATER)).events

    assert isinstance(event, ev.Withdrawn) and event.before_first_response is True
    assert ticket.state.status is TicketStatus.WITHDRAWN


def test_withdrawn_after_the_first_response():
    ticket = _prepared(respond)

    (event,) = ticket.send(withdraw(ticket.id, LATER)).events

    assert event.before_first_response is False


def test_a_reopened_ticket_is_open_again_and_waits_for_a_next_response():
    ticket = _prepared(respond, resolve)

    (event,) = ticket.send(reopen(ticket.id, "2026-03-02T11:00+01:00")).events

    assert isinstance(event, ev.Reopened)
    assert [d.metric for d in event.deadlines] == ["next_response:1"]
    assert event.deadlines[0].due_at == at("2026-03-02T15:00+01:00")
    assert ticket.state.status is TicketStatus.OPEN


def test_resolving_marks_the_open_metrics_met():
    """Decision of the code (SPEC silent): a resolution answers the customer, so it meets a running metric."""
    ticket = _fresh()

    (event,) = ticket.send(resolve(ticket.id, LATER)).events

    assert event.metrics_met == ("first_response",)
    assert ticket.metric().state == "met"


STATUSES = [
    (await_customer, TicketStatus.AWAITING_CUSTOMER),
    (resume, TicketStatus.OPEN),
    (resolve, TicketStatus.RESOLVED),
    (reopen, TicketStatus.OPEN),
    (resolve, TicketStatus.RESOLVED),
    (close, TicketStatus.CLOSED),
]


def test_status_over_a_ticket_life():
    ticket = _fresh()
    seen = [ticket.state.status]

    for minute, (step, _) in enumerate(STATUSES, start=1):
        ticket.send(step(ticket.id, f"2026-03-02T10:{minute:02d}+01:00"))
        seen.append(ticket.state.status)

    assert seen == [TicketStatus.OPEN, *(status for _, status in STATUSES)]


# --- every event is self-sufficient -----------------------------------------------------------------------


def _every_event_type() -> tuple[TicketStory, list]:
    """A professional ticket that goes through every ticket event type, with the commands that caused them."""
    ticket = opened(plan="professional", severity="C", at=OPENED_AT)
    commands = [
        flag_at_risk(ticket.id, "2026-03-02T11:30+01:00"),
        escalate(ticket.id, "2026-03-02T11:31+01:00", to="B"),
        change_severity(ticket.id, "2026-03-02T11:32+01:00", to="C"),
        request_callback(ticket.id, "2026-03-02T11:33+01:00"),
        complete_callback(ticket.id, "2026-03-02T11:34+01:00"),
        await_customer(ticket.id, "2026-03-02T11:35+01:00"),
        resume(ticket.id, "2026-03-02T11:40+01:00"),
        record_breach(ticket.id, "2026-03-02T12:30+01:00"),
        respond(ticket.id, "2026-03-02T12:31+01:00"),
        customer_reply(ticket.id, "2026-03-02T12:32+01:00"),
        resolve(ticket.id, "2026-03-02T12:33+01:00"),
        reopen(ticket.id, "2026-03-02T12:34+01:00"),
        resolve(ticket.id, "2026-03-02T12:35+01:00"),
        close(ticket.id, "2026-03-02T12:36+01:00"),
    ]
    for command in commands:
        assert ticket.send(command).status == "applied"
    withdrawn = opened(plan="professional", at=OPENED_AT, desk=ticket.desk)
    commands.append(withdraw(withdrawn.id, LATER))
    ticket.send(commands[-1])
    return ticket, [ticket.opening.command, withdrawn.opening.command, *commands]


def test_every_event_carries_ticket_customer_actor_time_command_and_event_id():
    ticket, commands = _every_event_type()
    by_id = {c.command_id: c for c in commands}
    customers = {c.ticket_id: c.customer_id for c in commands[:2]}
    events = ticket.events() + list(ticket.desk.events_of(commands[1].ticket_id))

    assert {type(e) for e in events} == set(ev.TICKET_EVENTS)
    for event in events:
        command = by_id[event.command_id]
        assert event.ticket_id == event.originator_id == command.ticket_id
        assert event.customer_id == customers[event.ticket_id]
        assert (event.actor, event.occurred_at) == (ACTOR, command.occurred_at)
    assert len({e.event_id for e in events}) == len(events)


def test_a_batch_decides_plan_subscriptions_before_the_tickets_that_need_them():
    # Subscriptions are keyed by customer, so the intake may poll an Open before the plan it needs.
    desk = new_desk()
    customer = unique("late")
    opening = open_ticket(customer, "2026-03-02T10:00+01:00")
    plan = subscribe(customer, "plus")
    outcomes = WriteSide(desk).handle_batch([opening, plan])
    assert [o.command for o in outcomes] == [opening, plan]
    assert [o.status for o in outcomes] == ["applied", "applied"]
    assert desk.ticket(opening.ticket_id).plan == "plus"
