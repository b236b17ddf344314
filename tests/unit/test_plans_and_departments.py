"""SPEC section 2 and the plan in force: departments and channels per plan, callbacks, and what Opened records."""

from __future__ import annotations

import pytest

from domain.events import CallbackDone, CallbackRequested, Opened
from domain.policy import Band
from tests.unit.builders import (
    complete_callback,
    new_desk,
    open_ticket,
    opened,
    request_callback,
    subscribe,
    unique,
)

PLANS = ("basic", "plus", "standard", "professional")
DEPARTMENTS = ("accounting", "trouble", "product", "logs", "guidance")
INCLUDED = {
    "basic": {"accounting", "trouble"},
    "plus": {"accounting", "trouble"},
    "standard": set(DEPARTMENTS),
    "professional": set(DEPARTMENTS),
}


@pytest.mark.parametrize("department", DEPARTMENTS)
@pytest.mark.parametrize("plan", PLANS)
def test_ticket_channel_opens_exactly_the_departments_of_the_plan(plan, department):
    outcome = opened(plan=plan, department=department).opening

    if department in INCLUDED[plan]:
        assert outcome.status == "applied", outcome.reason
    else:
        assert outcome.status == "refused"
        assert plan in outcome.reason and department in outcome.reason


# The hotline (channel "phone") is for service disruptions: trouble only, and not on basic.
PHONE = [
    ("basic", "trouble", "refused"),
    ("plus", "trouble", "applied"),
    ("standard", "trouble", "applied"),
    ("professional", "trouble", "applied"),
    ("plus", "accounting", "refused"),
    ("standard", "accounting", "refused"),
    ("standard", "product", "refused"),
    ("standard", "logs", "refused"),
    ("professional", "guidance", "refused"),
    ("professional", "accounting", "refused"),
    ("basic", "product", "refused"),
]


@pytest.mark.parametrize(("plan", "department", "status"), PHONE)
def test_phone_channel_only_for_trouble_and_only_on_plans_with_the_hotline(plan, department, status):
    outcome = opened(plan=plan, department=department, channel="phone").opening

    assert outcome.status == status, outcome.reason
    if status == "refused":
        assert plan in outcome.reason and department in outcome.reason


def test_a_phone_ticket_records_its_channel():
    (event,) = opened(plan="plus", channel="phone").opening.events

    assert isinstance(event, Opened) and event.channel == "phone"


@pytest.mark.parametrize(("plan", "status"), [("basic", "refused"), ("plus", "refused"), ("standard", "applied")])
def test_callbacks_belong_to_standard_and_professional(plan, status):
    ticket = opened(plan=plan)

    outcome = ticket.send(request_callback(ticket.id, "2026-03-02T10:30+01:00"))

    assert outcome.status == status, outcome.reason
    if status == "refused":
        assert plan in outcome.reason and "callback" in outcome.reason


def test_callback_is_requested_then_done_once():
    ticket = opened(plan="professional")
    requested = ticket.send(request_callback(ticket.id, "2026-03-02T10:30+01:00"))
    again = ticket.send(request_callback(ticket.id, "2026-03-02T10:35+01:00"))

    done = ticket.send(complete_callback(ticket.id, "2026-03-02T11:00+01:00"))
    done_again = ticket.send(complete_callback(ticket.id, "2026-03-02T11:05+01:00"))

    (request_event,) = requested.events
    assert isinstance(request_event, CallbackRequested)
    assert again.status == "refused" and "pending" in again.reason
    (done_event,) = done.events
    assert isinstance(done_event, CallbackDone) and done_event.requested_event_id == request_event.event_id
    assert done_again.status == "refused"


def test_a_ticket_needs_a_plan_in_force_at_opening():
    desk = new_desk()
    customer = unique("cust")
    desk.handle(subscribe(customer, "standard", effective_from="2026-03-02T12:00+01:00"))

    outcome = desk.handle(open_ticket(customer, "2026-03-02T11:59+01:00"))

    assert outcome.status == "refused" and customer in outcome.reason


def test_a_plan_change_applies_at_once_to_tickets_opened_after_it():
    desk = new_desk()
    customer = unique("cust")
    desk.handle(subscribe(customer, "basic", effective_from="2026-01-01T00:00+01:00"))
    desk.handle(subscribe(customer, "professional", effective_from="2026-03-02T12:00+01:00"))

    before = desk.handle(open_ticket(customer, "2026-03-02T11:59+01:00")).events[0]
    after = desk.handle(open_ticket(customer, "2026-03-02T12:00+01:00")).events[0]

    assert (before.plan, before.target_minutes) == ("basic", 8 * 60)
    assert (after.plan, after.target_minutes) == ("professional", 2 * 60)


def test_an_earlier_ticket_keeps_the_plan_it_was_opened_on():
    desk = new_desk()
    customer = unique("cust")
    desk.handle(subscribe(customer, "basic"))
    ticket_id = desk.handle(open_ticket(customer, "2026-03-02T10:00+01:00")).command.ticket_id

    desk.handle(subscribe(customer, "professional", effective_from="2026-03-02T11:00+01:00"))

    assert desk.ticket(ticket_id).plan == "basic"


def test_a_repeated_subscription_changes_nothing():
    desk = new_desk()
    command = subscribe(unique("cust"), "plus")

    assert [desk.handle(command).status, desk.handle(command).status] == ["applied", "unchanged"]


def test_a_subscription_to_an_unknown_plan_is_refused():
    outcome = new_desk().handle(subscribe(unique("cust"), "platinum"))

    assert outcome.status == "refused" and "platinum" in outcome.reason


def test_opened_records_plan_policy_version_and_what_was_asked():
    ticket = opened(plan="standard", severity="B", language="de", department="logs", at="2026-03-02T10:00+01:00")
    (event,) = ticket.opening.events

    assert isinstance(event, Opened)
    assert (event.plan, event.policy_version) == ("standard", "2021-07-01")
    assert (event.department, event.channel, event.severity, event.language) == ("logs", "ticket", "B", "de")
    assert event.customer_id == ticket.customer_id


# The band is taken at opening: 08:00 (inclusive) to 18:00 (exclusive) on working days is business hours.
BANDS = [
    ("monday 08:00 opening", "2026-03-02T08:00+01:00", Band.BUSINESS_HOURS),
    ("monday 07:59", "2026-03-02T07:59+01:00", Band.AFTER_HOURS),
    ("monday 17:59", "2026-03-02T17:59+01:00", Band.BUSINESS_HOURS),
    ("monday 18:00 closing", "2026-03-02T18:00+01:00", Band.AFTER_HOURS),
    ("saturday noon", "2026-03-07T12:00+01:00", Band.AFTER_HOURS),
    ("sunday noon", "2026-03-08T12:00+01:00", Band.AFTER_HOURS),
    ("good friday noon", "2026-04-03T12:00+02:00", Band.AFTER_HOURS),
    ("labour day noon", "2026-05-01T12:00+02:00", Band.AFTER_HOURS),
    ("08:00 given in UTC", "2026-03-02T07:00+00:00", Band.BUSINESS_HOURS),
]


@pytest.mark.parametrize(("when", "opened_at", "band"), BANDS, ids=[row[0] for row in BANDS])
def test_opened_records_the_time_band_at_opening(when, opened_at, band):
    (event,) = opened(at=opened_at).opening.events

    assert event.band is band


@pytest.mark.parametrize(("department", "incident"), [(d, d != "accounting") for d in DEPARTMENTS])
def test_opened_records_whether_the_ticket_is_an_incident(department, incident):
    (event,) = opened(plan="professional", department=department).opening.events

    assert event.incident is incident


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [("department", "sales", "sales"), ("language", "fr", "fr")],
)
def test_a_department_or_language_the_policy_does_not_know_is_refused(field, value, named):
    desk = new_desk()
    customer = unique("cust")
    desk.handle(subscribe(customer, "professional"))

    outcome = desk.handle(open_ticket(customer, "2026-03-02T10:00+01:00", **{field: value}))

    assert outcome.status == "refused" and named in outcome.reason
