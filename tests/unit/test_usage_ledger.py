"""SPEC section 6 on the event side: which plan bills a month, what uses a callback, what escalation changes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from consumers.write_side import WriteSide
from domain.billing import Month
from projections.billing import BillingFold, statement
from tests.unit.builders import (
    at,
    complete_callback,
    escalate,
    new_desk,
    open_ticket,
    request_callback,
    respond,
    shipped_book,
    subscribe,
    unique,
    withdraw,
)

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def ledger_of(desk) -> BillingFold:
    return BillingFold(shipped_book()).apply_all(desk.recorded_events())


def test_a_plan_change_during_a_month_bills_from_the_next_month():
    desk, customer = new_desk(), unique("cust")
    desk.handle(subscribe(customer, "basic", "2026-01-01T00:00+01:00"))
    desk.handle(subscribe(customer, "professional", "2026-03-15T12:00+01:00"))
    ledger, book = ledger_of(desk), shipped_book()
    assert ledger.usage.billed_plan(customer, Month(2026, 3), book) == "basic"
    assert ledger.usage.billed_plan(customer, Month(2026, 4), book) == "professional"
    assert statement(ledger, customer, Month(2026, 3), AS_OF).plan_fee == Decimal("0.00")
    assert statement(ledger, customer, Month(2026, 4), AS_OF).plan_fee == Decimal("599.99")


def test_a_customer_starting_during_a_month_is_billed_on_the_plan_they_start_with():
    desk, customer = new_desk(), unique("cust")
    desk.handle(subscribe(customer, "standard", "2026-03-10T09:00+01:00"))
    desk.handle(subscribe(customer, "plus", "2026-03-20T09:00+01:00"))
    ledger, book = ledger_of(desk), shipped_book()
    assert ledger.usage.billed_plan(customer, Month(2026, 3), book) == "standard"
    assert ledger.usage.billed_plan(customer, Month(2026, 2), book) is None
    assert statement(ledger, customer, Month(2026, 2), AS_OF) is None


def test_only_a_callback_carried_out_uses_one_and_a_phone_ticket_uses_none():
    desk, customer = new_desk(), unique("cust")
    desk.handle(subscribe(customer, "standard"))
    by_phone = open_ticket(customer, "2026-03-02T10:00+01:00", channel="phone")
    by_portal = open_ticket(customer, "2026-03-03T10:00+01:00")
    never_done = open_ticket(customer, "2026-03-04T10:00+01:00")
    WriteSide(desk).handle_batch([by_phone, by_portal, never_done])
    desk.handle(request_callback(by_portal.ticket_id, "2026-03-03T11:00+01:00"))
    desk.handle(complete_callback(by_portal.ticket_id, "2026-04-01T09:00+02:00"))
    desk.handle(request_callback(never_done.ticket_id, "2026-03-04T11:00+01:00"))
    ledger = ledger_of(desk)
    assert [c.ticket_id for c in ledger.usage.callbacks] == [by_portal.ticket_id]
    # Carried out in April: it counts in April, not in the month it was requested.
    assert statement(ledger, customer, Month(2026, 3), AS_OF).callbacks_used == 0
    assert statement(ledger, customer, Month(2026, 4), AS_OF).callbacks_used == 1


def test_the_highest_severity_reached_prices_the_incident_and_a_withdrawal_before_a_response_frees_it():
    desk, customer = new_desk(), unique("cust")
    desk.handle(subscribe(customer, "basic"))
    escalated = open_ticket(customer, "2026-03-02T10:00+01:00", severity="C")
    withdrawn = open_ticket(customer, "2026-03-02T20:00+01:00", severity="B")
    answered = open_ticket(customer, "2026-03-03T20:00+01:00", severity="C")
    WriteSide(desk).handle_batch([escalated, withdrawn, answered])
    desk.handle(escalate(escalated.ticket_id, "2026-03-02T10:30+01:00", to="A"))
    desk.handle(withdraw(withdrawn.ticket_id, "2026-03-02T20:10+01:00"))
    desk.handle(respond(answered.ticket_id, "2026-03-03T20:05+01:00"))
    desk.handle(withdraw(answered.ticket_id, "2026-03-03T21:00+01:00"))
    march = statement(ledger_of(desk), customer, Month(2026, 3), AS_OF)
    # A business hours 255, withdrawn before a response: nothing; withdrawn after one: C after hours 169.
    assert [(line.ticket_id, line.price) for line in march.incident_lines] == [
        (escalated.ticket_id, Decimal("255.00")),
        (answered.ticket_id, Decimal("169.00")),
    ]
    assert march.incident_lines[0].opened_at == at("2026-03-02T10:00+01:00")
