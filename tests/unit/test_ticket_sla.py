"""SPEC sections 3 and 5 on tickets: first-response targets and clocks, pauses, next responses, breaches, at risk.

Every time is Berlin local time with its offset (+01:00 in winter, +02:00 in summer), so each expected due time
can be checked by hand: business hours are Monday to Friday 08:00-18:00 without German public holidays.
"""

from __future__ import annotations

import pytest

from domain import events as ev
from domain.policy import ClockKind, parse_policy
from domain.sla import FIRST_RESPONSE, MetricState, next_response
from domain.ticket import TicketStatus, project
from tests.unit.builders import (
    at,
    await_customer,
    change_severity,
    complete_callback,
    customer_reply,
    escalate,
    flag_at_risk,
    new_desk,
    opened,
    record_breach,
    request_callback,
    respond,
    resume,
    shipped_policy_text,
    withdraw,
)

BUSINESS, AROUND = ClockKind.BUSINESS_HOURS, ClockKind.ROUND_THE_CLOCK

# --- section 3: target = min(plan, severity), on the severity's clock, 24/7 only in German ---------------

TARGETS = [
    # plan, severity, language, minutes, clock
    ("basic", "A", "en", 120, BUSINESS),
    ("basic", "A", "de", 120, AROUND),
    ("basic", "B", "en", 240, BUSINESS),
    ("basic", "B", "de", 240, BUSINESS),
    ("basic", "C", "en", 480, BUSINESS),
    ("basic", "C", "de", 480, BUSINESS),
    ("plus", "A", "en", 120, BUSINESS),
    ("plus", "A", "de", 120, AROUND),
    ("plus", "B", "en", 240, BUSINESS),
    ("plus", "C", "en", 360, BUSINESS),
    ("plus", "C", "de", 360, BUSINESS),
    ("standard", "A", "en", 120, BUSINESS),
    ("standard", "A", "de", 120, AROUND),
    ("standard", "B", "en", 240, BUSINESS),
    ("standard", "C", "en", 240, BUSINESS),
    ("standard", "C", "de", 240, BUSINESS),
    ("professional", "A", "en", 120, BUSINESS),
    ("professional", "A", "de", 120, AROUND),
    ("professional", "B", "en", 120, BUSINESS),
    ("professional", "B", "de", 120, BUSINESS),
    ("professional", "C", "en", 120, BUSINESS),
    ("professional", "C", "de", 120, BUSINESS),
]


@pytest.mark.parametrize(("plan", "severity", "language", "minutes", "clock"), TARGETS)
def test_first_response_target_is_the_shorter_of_plan_and_severity(plan, severity, language, minutes, clock):
    (event,) = opened(plan=plan, severity=severity, language=language).opening.events

    assert (event.target_minutes, event.clock) == (minutes, clock)
    (deadline,) = event.deadlines
    assert (deadline.metric, deadline.target_minutes, deadline.clock) == (FIRST_RESPONSE, minutes, clock)


DUE_TIMES = [
    # why, plan, severity, language, opened at, first response due
    ("8 h from 10:00 ends on 18:00 exactly", "basic", "C", "en", "2026-03-02T10:00+01:00", "2026-03-02T18:00+01:00"),
    ("6 h", "plus", "C", "en", "2026-03-02T10:00+01:00", "2026-03-02T16:00+01:00"),
    ("4 h", "standard", "C", "en", "2026-03-02T10:00+01:00", "2026-03-02T14:00+01:00"),
    ("2 h", "professional", "C", "en", "2026-03-02T10:00+01:00", "2026-03-02T12:00+01:00"),
    ("4 h from 14:00 is 18:00, not 08:00", "standard", "B", "en", "2026-03-02T14:00+01:00", "2026-03-02T18:00+01:00"),
    ("a minute past closing", "standard", "B", "en", "2026-03-02T14:01+01:00", "2026-03-03T08:01+01:00"),
    ("opened on saturday", "basic", "C", "en", "2026-03-07T10:00+01:00", "2026-03-09T16:00+01:00"),
    ("opened before opening", "basic", "C", "en", "2026-03-02T06:00+01:00", "2026-03-02T16:00+01:00"),
    ("opened after closing", "standard", "B", "en", "2026-03-03T19:00+01:00", "2026-03-04T12:00+01:00"),
    ("opened at 18:00 exactly", "standard", "B", "en", "2026-03-03T18:00+01:00", "2026-03-04T12:00+01:00"),
    ("English A: business hours", "professional", "A", "en", "2026-03-06T17:00+01:00", "2026-03-09T09:00+01:00"),
    ("German A: around the clock", "professional", "A", "de", "2026-03-06T17:00+01:00", "2026-03-06T19:00+01:00"),
    ("German A on a saturday night", "basic", "A", "de", "2026-03-07T23:30+01:00", "2026-03-08T01:30+01:00"),
    ("German B: business hours", "standard", "B", "de", "2026-03-06T17:00+01:00", "2026-03-09T11:00+01:00"),
    # 2026-03-29: 02:00 CET becomes 03:00 CEST; 2 h are 2 real hours.
    ("German A, spring DST", "basic", "A", "de", "2026-03-29T01:30+01:00", "2026-03-29T04:30+02:00"),
    ("German A, spring DST 2", "professional", "A", "de", "2026-03-29T00:30+01:00", "2026-03-29T03:30+02:00"),
    # 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:00-03:00 local happens twice.
    ("German A, autumn DST", "basic", "A", "de", "2026-10-25T01:30+02:00", "2026-10-25T02:30+01:00"),
    ("German A, autumn DST 2", "basic", "A", "de", "2026-10-25T02:30+02:00", "2026-10-25T03:30+01:00"),
    ("English A on the DST sunday", "basic", "A", "en", "2026-03-29T01:30+01:00", "2026-03-30T10:00+02:00"),
    ("business hours over DST", "basic", "C", "en", "2026-03-27T16:00+01:00", "2026-03-30T14:00+02:00"),
    # 2026-04-03 Good Friday and 2026-04-06 Easter Monday are nationwide holidays.
    ("over Easter", "standard", "C", "en", "2026-04-02T16:00+02:00", "2026-04-07T10:00+02:00"),
    ("English A on Good Friday", "professional", "A", "en", "2026-04-03T10:00+02:00", "2026-04-07T10:00+02:00"),
    ("German A on Good Friday", "professional", "A", "de", "2026-04-03T10:00+02:00", "2026-04-03T12:00+02:00"),
    ("Labour Day", "basic", "C", "en", "2026-04-30T14:00+02:00", "2026-05-04T12:00+02:00"),
]


@pytest.mark.parametrize(
    ("plan", "severity", "language", "opened_at", "due"),
    [row[1:] for row in DUE_TIMES],
    ids=[row[0] for row in DUE_TIMES],
)
def test_first_response_due_time(plan, severity, language, opened_at, due):
    ticket = opened(plan=plan, severity=severity, language=language, at=opened_at)

    (deadline,) = ticket.opening.events[0].deadlines
    assert deadline.due_at == at(due)
    assert ticket.due() == at(due)


AT_RISK = [
    # 75 % of the target: 8 h -> 6 h in, 6 h -> 4.5 h, 4 h -> 3 h, 2 h -> 1.5 h.
    ("basic", "2026-03-02T16:00+01:00"),
    ("plus", "2026-03-02T14:30+01:00"),
    ("standard", "2026-03-02T13:00+01:00"),
    ("professional", "2026-03-02T11:30+01:00"),
]


@pytest.mark.parametrize(("plan", "at_risk_at"), AT_RISK)
def test_at_risk_time_is_three_quarters_of_the_target(plan, at_risk_at):
    ticket = opened(plan=plan, severity="C", at="2026-03-02T10:00+01:00")

    assert ticket.metric().at_risk_at == at(at_risk_at)


# --- section 4: every severity change recomputes the open targets from the opening time ------------------


def test_escalation_recomputes_the_due_time_from_the_opening():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")
    assert ticket.due() == at("2026-03-02T18:00+01:00")

    outcome = ticket.send(escalate(ticket.id, "2026-03-02T11:00+01:00", to="A"))

    (event,) = outcome.events
    assert isinstance(event, ev.Escalated)
    assert (event.target_minutes, event.clock) == (120, BUSINESS)
    assert [d.due_at for d in event.deadlines] == [at("2026-03-02T12:00+01:00")]
    assert ticket.due() == at("2026-03-02T12:00+01:00")
    assert ticket.metric().state is MetricState.RUNNING


def test_escalation_step_by_step_c_to_b_to_a():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")

    ticket.send(escalate(ticket.id, "2026-03-02T10:30+01:00", to="B"))
    assert ticket.due() == at("2026-03-02T14:00+01:00")
    ticket.send(escalate(ticket.id, "2026-03-02T11:00+01:00", to="A"))
    assert ticket.due() == at("2026-03-02T12:00+01:00")


def test_escalation_past_the_new_due_time_records_the_breach_at_once():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")

    outcome = ticket.send(escalate(ticket.id, "2026-03-02T12:30+01:00", to="A"))

    escalated, breached = outcome.events
    assert isinstance(escalated, ev.Escalated) and isinstance(breached, ev.SlaBreached)
    assert breached.due_at == breached.breached_at == at("2026-03-02T12:00+01:00")
    assert (breached.metric, breached.noticed_by, breached.target_minutes) == (FIRST_RESPONSE, "EscalateTicket", 120)
    assert ticket.metric().state is MetricState.BREACHED


def test_escalating_a_german_ticket_to_a_moves_it_to_the_round_the_clock_clock():
    ticket = opened(plan="basic", severity="C", language="de", at="2026-03-06T17:00+01:00")
    assert ticket.due() == at("2026-03-09T15:00+01:00")

    ticket.send(escalate(ticket.id, "2026-03-06T17:30+01:00", to="A"))

    assert ticket.metric().clock is AROUND
    assert ticket.due() == at("2026-03-06T19:00+01:00")


def test_lowering_recomputes_the_due_time_from_the_opening():
    ticket = opened(plan="professional", severity="A", language="de", at="2026-03-06T17:00+01:00")
    assert ticket.due() == at("2026-03-06T19:00+01:00")

    outcome = ticket.send(change_severity(ticket.id, "2026-03-06T17:30+01:00", to="C", reason="one page only"))

    (event,) = outcome.events
    assert isinstance(event, ev.SeverityChanged) and event.reason == "one page only"
    assert ticket.metric().clock is BUSINESS
    assert ticket.due() == at("2026-03-09T09:00+01:00")


def test_lowering_after_the_due_time_does_not_undo_the_breach():
    """Decision of the code: the breach that happened before the change is recorded first."""
    ticket = opened(plan="basic", severity="A", at="2026-03-02T10:00+01:00")

    outcome = ticket.send(change_severity(ticket.id, "2026-03-02T12:30+01:00", to="C"))

    assert [type(e) for e in outcome.events] == [ev.SlaBreached, ev.SeverityChanged]
    assert outcome.events[0].breached_at == at("2026-03-02T12:00+01:00")
    assert ticket.metric().state is MetricState.BREACHED


def test_escalation_while_paused_counts_the_time_used_before_the_pause():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")
    ticket.send(await_customer(ticket.id, "2026-03-02T11:00+01:00"))  # 1 h used

    ticket.send(escalate(ticket.id, "2026-03-02T11:30+01:00", to="A"))
    assert ticket.metric().state is MetricState.PAUSED and ticket.due() is None
    ticket.send(resume(ticket.id, "2026-03-02T14:00+01:00"))

    assert ticket.due() == at("2026-03-02T15:00+01:00")  # the 1 h left of 2 h


def test_escalation_while_paused_beyond_the_new_target_breaches_at_once():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")
    ticket.send(await_customer(ticket.id, "2026-03-02T13:00+01:00"))  # 3 h used

    outcome = ticket.send(escalate(ticket.id, "2026-03-02T13:30+01:00", to="A"))

    assert [type(e) for e in outcome.events] == [ev.Escalated, ev.SlaBreached]
    assert outcome.events[1].breached_at == at("2026-03-02T12:00+01:00")


# --- section 3/5: pauses while the ticket waits on the customer --------------------------------------------


def test_awaiting_the_customer_pauses_the_running_metric():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")

    outcome = ticket.send(await_customer(ticket.id, "2026-03-02T16:00+01:00", reason="need the access log"))

    (event,) = outcome.events
    assert isinstance(event, ev.AwaitingCustomer)
    assert (event.reason, event.metrics_paused) == ("need the access log", (FIRST_RESPONSE,))
    assert ticket.state.status is TicketStatus.AWAITING_CUSTOMER
    assert ticket.metric().state is MetricState.PAUSED
    assert ticket.due() is None  # unknown until the ticket resumes


PAUSES = [
    # why, plan, severity, language, opened, paused, resumed, due after resuming
    (
        "across a night: 6 h used, 2 h left",
        "basic", "C", "en",
        "2026-03-02T10:00+01:00", "2026-03-02T16:00+01:00", "2026-03-03T09:00+01:00", "2026-03-03T11:00+01:00",
    ),
    (
        "resumed at night: the rest starts at the next opening",
        "basic", "C", "en",
        "2026-03-02T10:00+01:00", "2026-03-02T16:00+01:00", "2026-03-02T20:00+01:00", "2026-03-03T10:00+01:00",
    ),
    (
        "across a weekend: 1 h used, 3 h left",
        "standard", "B", "en",
        "2026-03-06T15:00+01:00", "2026-03-06T16:00+01:00", "2026-03-09T10:00+01:00", "2026-03-09T13:00+01:00",
    ),
    (
        "resumed on a sunday",
        "standard", "B", "en",
        "2026-03-06T15:00+01:00", "2026-03-06T16:00+01:00", "2026-03-08T11:00+01:00", "2026-03-09T11:00+01:00",
    ),
    (
        "paused after closing: the evening was not counted",
        "standard", "B", "en",
        "2026-03-02T16:00+01:00", "2026-03-02T20:00+01:00", "2026-03-03T09:00+01:00", "2026-03-03T11:00+01:00",
    ),
    (
        "round the clock: 30 min used, 90 min left",
        "basic", "A", "de",
        "2026-03-02T10:00+01:00", "2026-03-02T10:30+01:00", "2026-03-02T20:00+01:00", "2026-03-02T21:30+01:00",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("plan", "severity", "language", "opened_at", "paused", "resumed", "due"),
    [row[1:] for row in PAUSES],
    ids=[row[0] for row in PAUSES],
)
def test_resuming_plans_the_remaining_time_from_the_resume(plan, severity, language, opened_at, paused, resumed, due):
    ticket = opened(plan=plan, severity=severity, language=language, at=opened_at)
    ticket.send(await_customer(ticket.id, paused))

    outcome = ticket.send(resume(ticket.id, resumed))

    (event,) = outcome.events
    assert isinstance(event, ev.Resumed)
    assert [(d.metric, d.due_at) for d in event.deadlines] == [(FIRST_RESPONSE, at(due))]
    assert ticket.metric().state is MetricState.RUNNING and ticket.due() == at(due)
    assert ticket.state.status is TicketStatus.OPEN


def test_a_customer_reply_while_awaiting_the_customer_resumes():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")
    ticket.send(await_customer(ticket.id, "2026-03-02T16:00+01:00"))

    outcome = ticket.send(customer_reply(ticket.id, "2026-03-03T09:00+01:00"))

    resumed, replied = outcome.events
    assert isinstance(resumed, ev.Resumed) and isinstance(replied, ev.CustomerReplied)
    assert resumed.reason == "customer replied"
    assert ticket.state.status is TicketStatus.OPEN
    assert ticket.due() == at("2026-03-03T11:00+01:00")


def test_the_watchdog_does_not_breach_a_paused_metric():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")
    ticket.send(await_customer(ticket.id, "2026-03-02T16:00+01:00"))

    outcome = ticket.send(record_breach(ticket.id, "2026-03-02T19:00+01:00"))

    assert outcome.status == "unchanged"
    assert ticket.metric().state is MetricState.PAUSED


@pytest.mark.parametrize(
    ("first", "second"),
    [(await_customer, await_customer), (resume, resume)],
    ids=["await twice", "resume an open ticket"],
)
def test_pause_and_resume_need_the_right_status(first, second):
    ticket = opened()
    if first is await_customer:
        ticket.send(first(ticket.id, "2026-03-02T10:30+01:00"))

    outcome = ticket.send(second(ticket.id, "2026-03-02T11:00+01:00"))

    assert outcome.status == "refused"


# --- section 5: first and next response --------------------------------------------------------------------


def test_first_response_is_met_by_the_first_public_reply():
    ticket = opened(plan="standard", severity="C", at="2026-03-02T10:00+01:00")

    outcome = ticket.send(respond(ticket.id, "2026-03-02T11:00+01:00"))

    (event,) = outcome.events
    assert isinstance(event, ev.Responded) and event.metrics_met == (FIRST_RESPONSE,)
    metric = ticket.metric()
    assert (metric.state, metric.stopped_at, metric.due_at) == (
        MetricState.MET,
        at("2026-03-02T11:00+01:00"),
        at("2026-03-02T14:00+01:00"),
    )


def test_a_callback_is_not_a_response():
    ticket = opened(plan="standard", severity="C", at="2026-03-02T10:00+01:00")
    ticket.send(request_callback(ticket.id, "2026-03-02T10:10+01:00"))

    ticket.send(complete_callback(ticket.id, "2026-03-02T10:30+01:00"))

    assert ticket.metric().state is MetricState.RUNNING
    assert ticket.state.first_responded_at is None


def test_a_customer_reply_before_the_first_response_starts_nothing():
    ticket = opened(plan="standard", severity="C", at="2026-03-02T10:00+01:00")

    outcome = ticket.send(customer_reply(ticket.id, "2026-03-02T10:30+01:00"))

    (event,) = outcome.events
    assert isinstance(event, ev.CustomerReplied) and event.deadlines == ()
    assert list(ticket.state.metrics) == [FIRST_RESPONSE]


def test_next_response_starts_at_a_customer_reply_after_the_first_response():
    ticket = opened(plan="standard", severity="C", at="2026-03-02T10:00+01:00")
    ticket.send(respond(ticket.id, "2026-03-02T11:00+01:00"))

    outcome = ticket.send(customer_reply(ticket.id, "2026-03-02T13:00+01:00"))

    (event,) = outcome.events
    (deadline,) = event.deadlines
    assert (deadline.metric, deadline.target_minutes, deadline.clock) == (next_response(1), 240, BUSINESS)
    assert deadline.due_at == at("2026-03-02T17:00+01:00")  # same 4 h target, from the reply
    assert ticket.metric(next_response(1)).state is MetricState.RUNNING


def test_next_response_stops_at_the_next_reply_and_starts_again_at_the_next_customer_reply():
    ticket = opened(plan="standard", severity="C", at="2026-03-02T10:00+01:00")
    ticket.send(respond(ticket.id, "2026-03-02T11:00+01:00"))
    ticket.send(customer_reply(ticket.id, "2026-03-02T13:00+01:00"))
    second_reply = ticket.send(customer_reply(ticket.id, "2026-03-02T13:30+01:00"))

    answered = ticket.send(respond(ticket.id, "2026-03-02T15:00+01:00"))
    ticket.send(customer_reply(ticket.id, "2026-03-02T16:00+01:00"))

    assert second_reply.events[0].deadlines == ()  # one next response at a time
    assert answered.events[0].metrics_met == (next_response(1),)
    assert ticket.metric(next_response(1)).state is MetricState.MET
    assert ticket.due(next_response(2)) == at("2026-03-03T10:00+01:00")  # 2 h on monday, 2 h on tuesday


def test_next_response_uses_the_target_of_the_current_severity():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")
    ticket.send(respond(ticket.id, "2026-03-02T10:30+01:00"))
    ticket.send(escalate(ticket.id, "2026-03-02T11:00+01:00", to="B"))

    ticket.send(customer_reply(ticket.id, "2026-03-02T12:00+01:00"))

    assert ticket.due(next_response(1)) == at("2026-03-02T16:00+01:00")


def test_a_late_reply_records_the_breach_at_the_due_time_then_the_reply():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")

    outcome = ticket.send(respond(ticket.id, "2026-03-03T09:00+01:00"))

    breached, responded = outcome.events
    assert isinstance(breached, ev.SlaBreached) and isinstance(responded, ev.Responded)
    assert breached.due_at == breached.breached_at == at("2026-03-02T18:00+01:00")
    assert breached.noticed_by == "RecordResponse"
    assert responded.metrics_met == ()
    assert ticket.metric().state is MetricState.BREACHED
    assert ticket.metric().stopped_at == at("2026-03-02T18:00+01:00")


@pytest.mark.parametrize(
    ("replied", "state"),
    [
        ("2026-03-02T17:59+01:00", MetricState.MET),
        # SPEC 5: "within 8 h" includes the due instant, so a reply exactly at it meets the target. (This once
        # counted as a breach, while the specification left the instant open.)
        ("2026-03-02T18:00+01:00", MetricState.MET),
        ("2026-03-02T18:01+01:00", MetricState.BREACHED),
    ],
    ids=["a minute early", "on the due time", "a minute late"],
)
def test_a_reply_just_before_the_due_time_meets_it(replied, state):
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")

    ticket.send(respond(ticket.id, replied))

    assert ticket.metric().state is state


def test_a_late_next_response_is_breached_like_the_first():
    ticket = opened(plan="standard", severity="C", at="2026-03-02T10:00+01:00")
    ticket.send(respond(ticket.id, "2026-03-02T11:00+01:00"))
    ticket.send(customer_reply(ticket.id, "2026-03-02T13:00+01:00"))

    outcome = ticket.send(respond(ticket.id, "2026-03-02T17:30+01:00"))

    breached, _ = outcome.events
    assert (breached.metric, breached.breached_at) == (next_response(1), at("2026-03-02T17:00+01:00"))


# --- section 5: the watchdog's breach and at-risk alerts ---------------------------------------------------


def test_watchdog_breach_before_the_due_time_is_refused_naming_the_due_time():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")

    outcome = ticket.send(record_breach(ticket.id, "2026-03-02T17:59+01:00"))

    assert outcome.status == "refused"
    assert ticket.due().isoformat() in outcome.reason  # 2026-03-02T17:00:00+00:00, i.e. 18:00 Berlin


def test_watchdog_breach_after_the_due_time_is_recorded_exactly_once():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")

    first = ticket.send(record_breach(ticket.id, "2026-03-02T18:01+01:00"))
    second = ticket.send(record_breach(ticket.id, "2026-03-02T18:30+01:00"))
    late_reply = ticket.send(respond(ticket.id, "2026-03-03T09:00+01:00"))

    (breached,) = first.events
    assert isinstance(breached, ev.SlaBreached)
    assert (breached.breached_at, breached.noticed_by) == (at("2026-03-02T18:00+01:00"), "RecordSlaBreach")
    assert second.status == "unchanged"
    assert [type(e) for e in late_reply.events] == [ev.Responded]
    assert sum(isinstance(e, ev.SlaBreached) for e in ticket.events()) == 1


def test_any_command_after_the_due_time_notices_the_breach():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")

    outcome = ticket.send(customer_reply(ticket.id, "2026-03-03T09:00+01:00"))

    assert [type(e) for e in outcome.events] == [ev.SlaBreached, ev.CustomerReplied]
    assert outcome.events[0].noticed_by == "RecordCustomerReply"


def test_watchdog_breach_of_a_metric_the_ticket_does_not_have_is_refused():
    ticket = opened()

    outcome = ticket.send(record_breach(ticket.id, "2026-03-02T11:00+01:00", metric=next_response(1)))

    assert outcome.status == "refused" and next_response(1) in outcome.reason


def test_watchdog_breach_of_a_met_metric_changes_nothing():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")
    ticket.send(respond(ticket.id, "2026-03-02T11:00+01:00"))

    assert ticket.send(record_breach(ticket.id, "2026-03-02T19:00+01:00")).status == "unchanged"


def test_at_risk_is_flagged_once_after_three_quarters_of_the_target():
    ticket = opened(plan="standard", severity="C", at="2026-03-02T10:00+01:00")  # 4 h: at risk at 13:00

    early = ticket.send(flag_at_risk(ticket.id, "2026-03-02T12:59+01:00"))
    flagged = ticket.send(flag_at_risk(ticket.id, "2026-03-02T13:00+01:00"))
    again = ticket.send(flag_at_risk(ticket.id, "2026-03-02T13:30+01:00"))

    assert early.status == "refused" and ticket.metric().at_risk_at.isoformat() in early.reason
    (event,) = flagged.events
    assert isinstance(event, ev.SlaAtRisk)
    assert (event.metric, event.at_risk_at, event.due_at) == (
        FIRST_RESPONSE,
        at("2026-03-02T13:00+01:00"),
        at("2026-03-02T14:00+01:00"),
    )
    assert again.status == "unchanged"


def test_at_risk_after_the_due_time_records_the_breach_instead():
    ticket = opened(plan="standard", severity="C", at="2026-03-02T10:00+01:00")

    outcome = ticket.send(flag_at_risk(ticket.id, "2026-03-02T14:30+01:00"))

    assert [type(e) for e in outcome.events] == [ev.SlaBreached]


def test_at_risk_of_a_paused_metric_changes_nothing():
    ticket = opened(plan="standard", severity="C", at="2026-03-02T10:00+01:00")
    ticket.send(await_customer(ticket.id, "2026-03-02T12:00+01:00"))

    assert ticket.send(flag_at_risk(ticket.id, "2026-03-02T13:30+01:00")).status == "unchanged"


def test_the_at_risk_share_is_policy_data():
    text = shipped_policy_text().replace('at_risk_share = "0.75"', 'at_risk_share = "0.5"')
    ticket = opened(plan="standard", severity="C", at="2026-03-02T10:00+01:00", desk=new_desk(parse_policy(text)))

    assert ticket.metric().at_risk_at == at("2026-03-02T12:00+01:00")


# --- section 5: metric states, withdrawal, explanations, rebuilds ------------------------------------------


def test_metric_states_over_a_ticket_life():
    ticket = opened(plan="standard", severity="C", at="2026-03-02T10:00+01:00")
    states = [ticket.metric().state]
    ticket.send(await_customer(ticket.id, "2026-03-02T10:30+01:00"))
    states.append(ticket.metric().state)
    ticket.send(resume(ticket.id, "2026-03-02T11:00+01:00"))
    states.append(ticket.metric().state)
    ticket.send(respond(ticket.id, "2026-03-02T11:30+01:00"))
    states.append(ticket.metric().state)
    ticket.send(customer_reply(ticket.id, "2026-03-02T12:00+01:00"))
    # Due at 16:00; the watchdog may record the breach at any instant after it (at 16:00 it is still in time).
    ticket.send(record_breach(ticket.id, "2026-03-02T16:01+01:00", metric=next_response(1)))

    assert states == [MetricState.RUNNING, MetricState.PAUSED, MetricState.RUNNING, MetricState.MET]
    breached = ticket.metric(next_response(1))
    assert (breached.state, breached.stopped_at) == (MetricState.BREACHED, at("2026-03-02T16:00+01:00"))


def test_withdrawing_cancels_the_open_metrics():
    """Decision of the code: a withdrawn ticket's open metric is neither met nor breached but cancelled."""
    ticket = opened()

    outcome = ticket.send(withdraw(ticket.id, "2026-03-02T11:00+01:00"))

    assert outcome.events[0].metrics_cancelled == (FIRST_RESPONSE,)
    assert ticket.metric().state is MetricState.CANCELLED


def test_events_carry_what_explains_a_due_time_and_a_breach():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")
    paused = ticket.send(await_customer(ticket.id, "2026-03-02T16:00+01:00", reason="need the access log"))
    resumed = ticket.send(resume(ticket.id, "2026-03-03T09:00+01:00"))
    breached = ticket.send(record_breach(ticket.id, "2026-03-03T11:01+01:00"))  # due 11:00, breached after

    (opening,) = ticket.opening.events
    assert (opening.policy_version, opening.occurred_at) == ("2021-07-01", at("2026-03-02T10:00+01:00"))
    assert opening.deadlines[0].policy_version == "2021-07-01"
    assert paused.events[0].reason == "need the access log"
    assert resumed.events[0].deadlines[0].due_at == at("2026-03-03T11:00+01:00")
    (breach,) = breached.events
    assert (breach.policy_version, breach.clock, breach.target_minutes) == ("2021-07-01", BUSINESS, 480)
    assert breach.due_at == at("2026-03-03T11:00+01:00")


def test_a_ticket_keeps_the_policy_version_it_was_opened_under():
    shipped = shipped_policy_text()
    later = (
        shipped.replace('version = "2021-07-01"', 'version = "2026-04-01"')
        .replace("effective_from = 2021-07-01", "effective_from = 2026-04-01")
        .replace('first_response_hours = "8"', 'first_response_hours = "4"', 1)  # basic: 8 h -> 4 h
    )
    desk = new_desk(parse_policy(shipped + "\n" + later))
    before = opened(plan="basic", severity="C", at="2026-03-31T17:00+02:00", desk=desk)
    after = opened(plan="basic", severity="C", at="2026-04-01T10:00+02:00", desk=desk)

    before.send(escalate(before.id, "2026-04-01T09:00+02:00", to="B"))
    before.send(change_severity(before.id, "2026-04-01T10:00+02:00", to="C"))

    assert before.opening.events[0].policy_version == "2021-07-01"
    assert after.opening.events[0].policy_version == "2026-04-01"
    assert after.due() == at("2026-04-01T14:00+02:00")  # 4 h under 2026-04-01
    assert before.due() == at("2026-04-01T15:00+02:00")  # still 8 h: 1 h on tuesday, 7 h on wednesday


def test_a_rebuild_from_the_stored_events_gives_the_same_state_and_no_second_breach():
    ticket = opened(plan="basic", severity="C", at="2026-03-02T10:00+01:00")
    ticket.send(record_breach(ticket.id, "2026-03-02T18:01+01:00"))  # due 18:00, breached after

    rebuilt = project(None, ticket.events())

    assert rebuilt == ticket.state
    assert rebuilt.metric(FIRST_RESPONSE).state is MetricState.BREACHED
    assert ticket.send(record_breach(ticket.id, "2026-03-03T09:00+01:00")).status == "unchanged"
