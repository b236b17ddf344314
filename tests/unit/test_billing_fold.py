"""The billing fold (SPEC 6): fee-only months, closing, adjustments after closing, and the same as `replay`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from domain.billing import Month
from domain.commands import parse_command
from domain.events import Escalated, Withdrawn
from domain.statement import Statement
from infra.replay import replay
from projections.billing import BillingFold, all_statements, statement, statements
from tests.unit.builders import (
    at,
    close_month,
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

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "march-2026.jsonl"
MARCH, APRIL, MAY = Month(2026, 3), Month(2026, 4), Month(2026, 5)
D = Decimal


def fold_of(desk) -> BillingFold:
    return BillingFold(shipped_book()).apply_all(desk.recorded_events())


def basic_customer_with_a_march_ticket(severity: str = "C"):
    """A basic customer (every incident billed) whose ticket opened Tuesday 10 March, business hours."""
    desk, customer = new_desk(), unique("cust")
    desk.handle(subscribe(customer, "basic", "2026-01-01T00:00+01:00"))
    opening = open_ticket(customer, "2026-03-10T10:00+01:00", severity=severity)
    assert desk.handle(opening).status == "applied"
    return desk, customer, opening.ticket_id


def test_every_month_with_a_plan_has_a_statement_even_without_tickets():
    desk, customer = new_desk(), unique("cust")
    desk.handle(subscribe(customer, "standard", "2026-01-15T00:00+01:00"))
    desk.handle(open_ticket(customer, "2026-03-10T10:00+01:00"))
    found = all_statements(fold_of(desk), at("2026-04-20T12:00+02:00"))
    assert [(str(s.month), s.net, len(s.incident_lines)) for s in found] == [
        ("2026-01", D("229.99"), 0),
        ("2026-02", D("229.99"), 0),
        ("2026-03", D("229.99"), 1),  # included: the first of five
        ("2026-04", D("229.99"), 0),
    ]
    assert [s.closed for s in found] == [True, True, True, False]


def test_replay_keeps_fee_only_months_before_the_first_ticket():
    customer = unique("cust")
    commands = [subscribe(customer, "plus", "2026-01-01T00:00+01:00"), open_ticket(customer, "2026-03-10T10:00+01:00")]
    report = replay([c.model_dump_json() for c in commands], shipped_book(), at("2026-03-31T12:00+02:00"))
    assert [(str(s.month), s.net) for s in report.statements] == [
        ("2026-01", D("99.99")),
        ("2026-02", D("99.99")),
        ("2026-03", D("99.99")),
    ]


def test_an_open_statement_says_as_of_and_closes_by_itself_on_the_closing_day():
    desk, customer, _ = basic_customer_with_a_march_ticket()
    fold = fold_of(desk)
    open_one = statement(fold, customer, MARCH, at("2026-04-04T23:59+02:00"))
    assert (open_one.closed, open_one.as_of) == (False, at("2026-04-04T23:59+02:00"))
    closed_one = statement(fold, customer, MARCH, at("2026-04-20T12:00+02:00"))
    assert (closed_one.closed, closed_one.as_of) == (True, at("2026-04-05T00:00+02:00"))


def test_a_month_closed_by_command_is_frozen_at_its_closing():
    desk, customer, _ = basic_customer_with_a_march_ticket()
    desk.handle(close_month("2026-03", "2026-04-02T09:00+02:00"))
    frozen = statement(fold_of(desk), customer, MARCH, at("2026-04-03T12:00+02:00"))
    assert (frozen.closed, frozen.as_of, frozen.net) == (True, at("2026-04-02T09:00+02:00"), D("85.00"))


def test_a_late_escalation_after_closing_is_one_adjustment_on_the_next_statement():
    desk, customer, ticket_id = basic_customer_with_a_march_ticket()
    desk.handle(close_month("2026-03", "2026-04-02T09:00+02:00"))
    closed_before = statement(fold_of(desk), customer, MARCH, at("2026-04-03T12:00+02:00"))
    desk.handle(escalate(ticket_id, "2026-04-10T10:00+02:00", to="A"))
    fold, as_of = fold_of(desk), at("2026-04-20T12:00+02:00")
    march, april = statement(fold, customer, MARCH, as_of), statement(fold, customer, APRIL, as_of)
    assert march == closed_before
    assert march.incident_lines[0].price == D("85.00")
    (line,) = april.adjustments
    escalation = next(e for e in desk.events_of(ticket_id) if isinstance(e, Escalated))
    assert (line.ticket_id, line.month, line.amount) == (ticket_id, MARCH, D("170.00"))  # A 255 - C 85
    assert line.reference.startswith("portal:REF-")
    assert line.source_event_ids == (escalation.event_id,)
    assert "highest severity C -> A" in line.reason
    assert (april.net, april.vat, april.gross, april.closed) == (D("170.00"), D("32.30"), D("202.30"), False)


def test_an_escalation_after_the_closing_day_adjusts_without_a_closing_command():
    desk, customer, ticket_id = basic_customer_with_a_march_ticket()
    desk.handle(escalate(ticket_id, "2026-04-06T10:00+02:00", to="B"))
    fold, as_of = fold_of(desk), at("2026-04-20T12:00+02:00")
    assert statement(fold, customer, MARCH, as_of).net == D("85.00")
    assert [a.amount for a in statement(fold, customer, APRIL, as_of).adjustments] == [D("74.00")]  # 159 - 85


def test_an_escalation_before_the_month_closes_changes_the_open_statement():
    desk, customer, ticket_id = basic_customer_with_a_march_ticket()
    desk.handle(escalate(ticket_id, "2026-04-03T10:00+02:00", to="A"))
    fold, as_of = fold_of(desk), at("2026-04-20T12:00+02:00")
    assert statement(fold, customer, MARCH, as_of).net == D("255.00")
    assert statement(fold, customer, APRIL, as_of).adjustments == ()


def test_a_withdrawal_before_the_first_response_after_closing_is_a_negative_adjustment():
    desk, customer, ticket_id = basic_customer_with_a_march_ticket()
    desk.handle(close_month("2026-03", "2026-04-01T08:00+02:00"))
    desk.handle(withdraw(ticket_id, "2026-04-08T10:00+02:00"))
    fold, as_of = fold_of(desk), at("2026-04-20T12:00+02:00")
    assert statement(fold, customer, MARCH, as_of).net == D("85.00")
    (line,) = statement(fold, customer, APRIL, as_of).adjustments
    withdrawal = next(e for e in desk.events_of(ticket_id) if isinstance(e, Withdrawn))
    assert (line.ticket_id, line.month, line.amount) == (ticket_id, MARCH, D("-85.00"))
    assert line.reason == "no longer an incident"
    assert line.source_event_ids == (withdrawal.event_id,)
    assert statement(fold, customer, APRIL, as_of).net == D("-85.00")


def test_a_withdrawal_after_a_response_changes_nothing_after_closing():
    desk, customer, ticket_id = basic_customer_with_a_march_ticket()
    desk.handle(respond(ticket_id, "2026-03-10T11:00+01:00"))
    desk.handle(close_month("2026-03", "2026-04-01T08:00+02:00"))
    desk.handle(withdraw(ticket_id, "2026-04-08T10:00+02:00"))
    assert statement(fold_of(desk), customer, APRIL, at("2026-04-20T12:00+02:00")).adjustments == ()


def test_two_late_escalations_adjust_by_the_difference_each_time_and_the_carrier_freezes_them():
    desk, customer, ticket_id = basic_customer_with_a_march_ticket()
    desk.handle(close_month("2026-03", "2026-04-01T08:00+02:00"))
    desk.handle(escalate(ticket_id, "2026-04-08T10:00+02:00", to="B"))
    desk.handle(close_month("2026-04", "2026-05-01T08:00+02:00"))
    desk.handle(escalate(ticket_id, "2026-05-08T10:00+02:00", to="A"))
    fold, as_of = fold_of(desk), at("2026-05-20T12:00+02:00")
    april, may = statement(fold, customer, APRIL, as_of), statement(fold, customer, MAY, as_of)
    assert (april.closed, [a.amount for a in april.adjustments]) == (True, [D("74.00")])
    assert [(a.month, a.amount) for a in may.adjustments] == [(MARCH, D("96.00"))]  # 255 - 85 - 74


def test_a_repeated_delivery_changes_nothing():
    desk, customer, ticket_id = basic_customer_with_a_march_ticket()
    desk.handle(close_month("2026-03", "2026-04-01T08:00+02:00"))
    desk.handle(escalate(ticket_id, "2026-04-08T10:00+02:00", to="B"))
    events = list(desk.recorded_events())
    once = BillingFold(shipped_book()).apply_all(events)
    twice = BillingFold(shipped_book()).apply_all([*events, *events])
    as_of = at("2026-04-20T12:00+02:00")
    assert all_statements(twice, as_of) == all_statements(once, as_of)
    assert len(statement(twice, customer, APRIL, as_of).adjustments) == 1


def test_statements_of_a_month_list_every_customer_and_lines_name_reference_and_events():
    desk, first, second = new_desk(), unique("cust-a"), unique("cust-b")
    desk.handle(subscribe(first, "standard"))
    desk.handle(subscribe(second, "plus"))
    opening = open_ticket(first, "2026-03-10T10:00+01:00", reference="T-77")
    desk.handle(opening)
    desk.handle(request_callback(opening.ticket_id, "2026-03-10T10:30+01:00"))
    desk.handle(complete_callback(opening.ticket_id, "2026-03-10T11:00+01:00"))
    found = statements(fold_of(desk), MARCH, at("2026-03-31T12:00+02:00"))
    assert [s.customer_id for s in found] == sorted([first, second])
    mine = next(s for s in found if s.customer_id == first)
    (line,) = mine.incident_lines
    assert (line.ticket_id, line.reference) == (opening.ticket_id, "portal:T-77")
    assert line.source_event_ids == (next(iter(desk.events_of(opening.ticket_id))).event_id,)
    assert mine.callback_lines[0].reference == "portal:T-77"


def test_the_fold_gives_the_same_statements_as_replay():
    lines = EXAMPLE.read_text().splitlines()
    customer = unique("cust")
    late = [subscribe(customer, "basic", "2026-01-01T00:00+01:00"), open_ticket(customer, "2026-03-10T10:00+01:00")]
    late.append(close_month("2026-03", "2026-04-02T09:00+02:00"))
    late.append(escalate(late[1].ticket_id, "2026-04-10T10:00+02:00", to="A"))
    lines += [c.model_dump_json() for c in late]
    as_of = at("2026-04-20T12:00+02:00")
    report = replay(lines, shipped_book(), as_of)
    desk = new_desk()
    for text in lines:
        try:
            desk.handle(parse_command(text))
        except ValidationError:
            continue
    expected = all_statements(fold_of(desk), as_of)
    assert report.statements == expected
    assert any(s.adjustments for s in expected)
    assert all(isinstance(s, Statement) for s in expected)
