"""Billing rules of SPEC section 6, with every amount worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.billing import (
    AdjustmentLine,
    BillingError,
    CallbackUse,
    Incident,
    Month,
    Statement,
    adjustments_for,
    build_statement,
    closing_instant,
    vat_on,
)
from domain.errors import PolicyError
from domain.policy import Band, IncidentPrice, PolicyBook, Severity, parse_policy

BERLIN = ZoneInfo("Europe/Berlin")
BOOK = parse_policy((files("domain") / "data" / "policy.toml").read_text(encoding="utf-8"), "policy.toml")
POLICY = BOOK.latest
V1 = POLICY.version
MARCH, APRIL = Month(2026, 3), Month(2026, 4)
END_OF_MARCH = datetime(2026, 3, 31, 20, 0, tzinfo=BERLIN)
CUSTOMER = "cust-7"
BH, AH = Band.BUSINESS_HOURS, Band.AFTER_HOURS
A, B, C = Severity.A, Severity.B, Severity.C


def D(text: str) -> Decimal:
    return Decimal(text)


def berlin(at: str | datetime) -> datetime:
    return at if isinstance(at, datetime) else datetime.fromisoformat(at).replace(tzinfo=BERLIN)


def ticket(number: int) -> UUID:
    """Ticket ids whose order is the number's: tie-breaks are then readable."""
    return UUID(int=number)


def incident(
    number: int,
    at: str | datetime = "2026-03-10T10:00",
    severity: Severity = C,
    band: Band = BH,
    *,
    department: str = "trouble",
    withdrawn: bool = False,
    version: str = V1,
    customer: str = CUSTOMER,
) -> Incident:
    return Incident(
        ticket_id=ticket(number),
        customer_id=customer,
        opened_at=berlin(at),
        department=department,
        highest_severity=severity,
        band=band,
        policy_version=version,
        withdrawn_before_response=withdrawn,
        source_event_ids=(uuid4(),),
    )


def callback(number: int, at: str | datetime = "2026-03-12T10:00", customer: str = CUSTOMER) -> CallbackUse:
    return CallbackUse(ticket_id=ticket(number), customer_id=customer, done_at=berlin(at), event_id=uuid4())


def statement(
    plan: str,
    incidents: tuple[Incident, ...] | list[Incident] = (),
    callbacks: tuple[CallbackUse, ...] | list[CallbackUse] = (),
    *,
    month: Month = MARCH,
    book: PolicyBook = BOOK,
    adjustments: tuple[AdjustmentLine, ...] = (),
    as_of: datetime = END_OF_MARCH,
    closed: bool = False,
) -> Statement:
    return build_statement(
        book, CUSTOMER, month, plan, incidents, callbacks, as_of=as_of, adjustments=adjustments, closed=closed
    )


def book_with(**changes: object) -> PolicyBook:
    return PolicyBook(policies=(POLICY.model_copy(update=changes),))


def prices(result: Statement) -> list[Decimal]:
    return [line.price for line in result.incident_lines]


def included(result: Statement) -> list[UUID]:
    return [line.ticket_id for line in result.incident_lines if line.included]


# --- plan fee, included incidents, prices, totals -------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "incidents", "line_prices", "net", "vat", "gross"),
    [
        # basic includes nothing: 85 + 510 = 595.00; VAT 113.05 exactly.
        ("basic", [(C, BH), (A, AH)], ["85.00", "510.00"], "595.00", "113.05", "708.05"),
        ("basic", [(B, BH), (B, AH)], ["159.00", "318.00"], "477.00", "90.63", "567.63"),
        ("basic", [], [], "0.00", "0.00", "0.00"),
        # plus: two included, then 85 + 510; 99.99 + 595 = 694.99; VAT 132.0481 -> 132.05.
        (
            "plus",
            [(C, BH), (B, AH), (C, BH), (A, AH)],
            ["0.00", "0.00", "85.00", "510.00"],
            "694.99",
            "132.05",
            "827.04",
        ),
        # standard: three of five included; 229.99 -> VAT 43.6981 -> 43.70.
        ("standard", [(A, AH), (A, AH), (B, BH)], ["0.00", "0.00", "0.00"], "229.99", "43.70", "273.69"),
        # professional pays the fee for an empty month: 599.99 -> VAT 113.9981 -> 114.00.
        ("professional", [], [], "599.99", "114.00", "713.99"),
    ],
)
def test_statement_totals(plan, incidents, line_prices, net, vat, gross):
    usage = [
        incident(n, datetime(2026, 3, 10, 9 + n, tzinfo=BERLIN), severity, band)
        for n, (severity, band) in enumerate(incidents)
    ]
    result = statement(plan, usage)
    assert result.plan_fee == POLICY.plan(plan).monthly_fee
    assert prices(result) == [D(price) for price in line_prices]
    assert (result.net, result.vat, result.gross) == (D(net), D(vat), D(gross))
    assert result.gross == result.net + result.vat


@pytest.mark.parametrize(
    ("severity", "band", "price"),
    [
        (C, BH, "85.00"),
        (C, AH, "169.00"),
        (B, BH, "159.00"),
        (B, AH, "318.00"),
        (A, BH, "255.00"),
        (A, AH, "510.00"),
    ],
)
def test_price_by_highest_severity_and_band(severity, band, price):
    assert prices(statement("basic", [incident(1, severity=severity, band=band)])) == [D(price)]


def test_a_ticket_escalated_from_c_to_a_is_priced_as_a():
    escalated = incident(1, severity=A, band=BH)  # opened as C; the caller records the highest reached
    result = statement("basic", [escalated])
    assert prices(result) == [D("255.00")]
    assert result.incident_lines[0].severity == A


@pytest.mark.parametrize(
    ("opened_at", "band", "price"),
    [
        ("2026-03-09T08:00", BH, "85.00"),  # Monday 08:00 is business hours
        ("2026-03-09T17:59", BH, "85.00"),
        ("2026-03-09T18:00", AH, "169.00"),  # 18:00 is after hours
        ("2026-03-14T10:00", AH, "169.00"),  # Saturday
        ("2026-03-14T10:00", BH, "85.00"),  # the band is the caller's, never recomputed here
    ],
)
def test_the_band_given_at_opening_sets_the_price(opened_at, band, price):
    result = statement("basic", [incident(1, opened_at, C, band)])
    assert prices(result) == [D(price)]
    assert result.incident_lines[0].band == band


@pytest.mark.parametrize(
    ("opened", "expected_included", "expected_billable"),
    [
        # opening order, whatever order the caller lists them in
        ([(3, "2026-03-02T09:00"), (1, "2026-03-02T11:00"), (2, "2026-03-02T10:00")], [3, 2], [1]),
        # a tie at the same instant goes to the smaller ticket id
        ([(2, "2026-03-02T10:00"), (1, "2026-03-02T10:00"), (3, "2026-03-02T11:00")], [1, 2], [3]),
        ([(2, "2026-03-02T10:00"), (3, "2026-03-02T09:00"), (1, "2026-03-02T10:00")], [3, 1], [2]),
        # the same instant written in another zone is still a tie
        ([(2, "2026-03-02T10:00"), (1, datetime(2026, 3, 2, 9, 0, tzinfo=UTC)), (3, "2026-03-01T08:00")], [3, 1], [2]),
    ],
)
def test_included_incidents_are_used_in_opening_order(opened, expected_included, expected_billable):
    result = statement("plus", [incident(number, at) for number, at in opened])
    assert included(result) == [ticket(n) for n in expected_included]
    billable = [line.ticket_id for line in result.incident_lines if not line.included]
    assert billable == [ticket(n) for n in expected_billable]
    assert [line.opened_at for line in result.incident_lines] == sorted(
        line.opened_at for line in result.incident_lines
    )


@pytest.mark.parametrize(
    ("department", "withdrawn", "counted"),
    [
        ("trouble", False, True),
        ("product", False, True),
        ("logs", False, True),
        ("guidance", False, True),
        ("accounting", False, False),
        ("trouble", True, False),
        ("accounting", True, False),
    ],
)
def test_what_counts_as_an_incident(department, withdrawn, counted):
    result = statement("basic", [incident(1, department=department, withdrawn=withdrawn)])
    assert len(result.incident_lines) == int(counted)
    assert result.net == (D("85.00") if counted else D("0.00"))


def test_a_withdrawn_or_accounting_ticket_uses_no_allowance():
    usage = [
        incident(1, "2026-03-02T09:00", withdrawn=True),
        incident(2, "2026-03-02T09:30", department="accounting"),
        incident(3, "2026-03-02T10:00"),
        incident(4, "2026-03-02T11:00"),
        incident(5, "2026-03-02T12:00", A, AH),
    ]
    result = statement("plus", usage)
    assert included(result) == [ticket(3), ticket(4)]
    assert prices(result) == [D("0.00"), D("0.00"), D("510.00")]
    assert (result.included_allowance, result.included_used) == (2, 2)
    assert result.net == D("609.99")  # 99.99 + 510


def test_incident_counts_by_severity_and_band_include_included_ones():
    usage = [incident(1), incident(2), incident(3, severity=A, band=AH), incident(4, severity=B, withdrawn=True)]
    result = statement("plus", usage)
    counts = {(count.severity, count.band): count.count for count in result.incident_counts}
    assert counts == {(A, BH): 0, (A, AH): 1, (B, BH): 0, (B, AH): 0, (C, BH): 2, (C, AH): 0}
    assert [(count.severity, count.band) for count in result.incident_counts][:2] == [(A, BH), (A, AH)]


def test_every_incident_line_traces_to_its_events():
    usage = incident(1, severity=B, band=AH)
    line = statement("basic", [usage]).incident_lines[0]
    assert (line.ticket_id, line.opened_at, line.source_event_ids) == (
        usage.ticket_id,
        usage.opened_at,
        usage.source_event_ids,
    )
    assert (line.department, line.policy_version, line.included) == ("trouble", V1, False)


# --- months in Berlin time ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "month"),
    [
        ("2026-03-31T21:59:59+00:00", "2026-03"),  # 23:59:59 CEST
        ("2026-03-31T22:30:00+00:00", "2026-04"),  # 00:30 CEST on 1 April
        ("2026-10-31T22:59:00+00:00", "2026-10"),  # 23:59 CET, after the change back on 25 October
        ("2026-10-31T23:30:00+00:00", "2026-11"),
        ("2026-12-31T23:00:00+00:00", "2027-01"),
        ("2026-03-01T00:00:00+01:00", "2026-03"),
    ],
)
def test_month_of_an_instant_is_the_berlin_month(instant, month):
    assert str(Month.of(datetime.fromisoformat(instant), BERLIN)) == month


@pytest.mark.parametrize(
    ("opened_at", "month", "accepted"),
    [
        (datetime(2026, 3, 31, 22, 30, tzinfo=UTC), APRIL, True),
        (datetime(2026, 3, 31, 22, 30, tzinfo=UTC), MARCH, False),
        (datetime(2026, 3, 31, 21, 59, tzinfo=UTC), MARCH, True),
        (datetime(2026, 10, 31, 23, 30, tzinfo=UTC), Month(2026, 11), True),
        (datetime(2026, 10, 31, 23, 30, tzinfo=UTC), Month(2026, 10), False),
    ],
)
def test_an_incident_belongs_to_the_berlin_month_it_was_opened_in(opened_at, month, accepted):
    usage = [incident(1, opened_at)]
    if accepted:
        assert len(statement("basic", usage, month=month).incident_lines) == 1
    else:
        with pytest.raises(BillingError, match=str(ticket(1))):
            statement("basic", usage, month=month)


@pytest.mark.parametrize(
    ("text", "month", "next_month", "first_instant_utc"),
    [
        ("2026-03", Month(2026, 3), "2026-04", "2026-02-28T23:00:00+00:00"),
        ("2026-04", Month(2026, 4), "2026-05", "2026-03-31T22:00:00+00:00"),
        ("2026-12", Month(2026, 12), "2027-01", "2026-11-30T23:00:00+00:00"),
    ],
)
def test_month_value(text, month, next_month, first_instant_utc):
    assert Month.parse(text) == month
    assert str(month) == text
    assert str(month.next()) == next_month
    assert month.first_instant(BERLIN) == datetime.fromisoformat(first_instant_utc)
    assert month < month.next()


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-3", "March 2026", "2026-03-01"])
def test_month_refuses_what_is_not_a_month(text):
    with pytest.raises(ValueError, match="month"):
        Month.parse(text)


def test_month_of_a_naive_instant_is_refused():
    with pytest.raises(ValueError, match="no time zone"):
        Month.of(datetime(2026, 3, 1), BERLIN)


# --- callbacks ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "done", "callback_price", "used", "over", "charge", "net", "vat", "gross"),
    [
        ("standard", 3, None, 3, 0, "0.00", "229.99", "43.70", "273.69"),
        ("standard", 7, None, 7, 2, "0.00", "229.99", "43.70", "273.69"),
        # 2 over at 12.50: 229.99 + 25.00 = 254.99; VAT 48.4481 -> 48.45
        ("standard", 7, "12.50", 7, 2, "25.00", "254.99", "48.45", "303.44"),
        ("professional", 26, "10.00", 26, 1, "10.00", "609.99", "115.90", "725.89"),
    ],
)
def test_callbacks_over_the_allowance(plan, done, callback_price, used, over, charge, net, vat, gross):
    book = book_with(callback_price=None if callback_price is None else D(callback_price))
    calls = [callback(n, datetime(2026, 3, 2, tzinfo=BERLIN) + timedelta(hours=n)) for n in reversed(range(done))]
    result = statement(plan, callbacks=calls, book=book)
    assert (result.callbacks_used, result.callbacks_included, result.callbacks_over) == (
        used,
        POLICY.plan(plan).callbacks_per_month,
        over,
    )
    assert result.callback_charge == D(charge)
    assert (result.net, result.vat, result.gross) == (D(net), D(vat), D(gross))


def test_the_callbacks_over_are_the_last_carried_out():
    calls = [callback(n, datetime(2026, 3, 2, 8, tzinfo=BERLIN) + timedelta(hours=n)) for n in (6, 0, 3, 5, 1, 2, 4)]
    result = statement("standard", callbacks=calls, book=book_with(callback_price=D("12.50")))
    over = [line.ticket_id for line in result.callback_lines if line.over]
    assert over == [ticket(5), ticket(6)]
    assert [line.price for line in result.callback_lines] == [D("0.00")] * 5 + [D("12.50")] * 2


def test_a_callback_counts_in_the_berlin_month_it_was_carried_out():
    done_in_april = callback(1, datetime(2026, 3, 31, 22, 30, tzinfo=UTC))
    assert statement("standard", callbacks=[done_in_april], month=APRIL).callbacks_used == 1
    with pytest.raises(BillingError, match="2026-04"):
        statement("standard", callbacks=[done_in_april], month=MARCH)


# --- VAT ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("net", "vat"),
    [
        ("0.50", "0.10"),  # 0.095: half a cent rounds up
        ("1.50", "0.29"),  # 0.285: half up, where half-even would give 0.28
        ("0.05", "0.01"),  # 0.0095
        ("0.02", "0.00"),  # 0.0038
        ("99.99", "19.00"),  # 18.9981
        ("0.00", "0.00"),
        ("-1.50", "-0.29"),  # a credit rounds away from zero as well
    ],
)
def test_vat_rounds_half_up_to_the_cent(net, vat):
    assert vat_on(D(net), POLICY.vat_rate) == D(vat)


@pytest.mark.parametrize(
    ("plan", "incidents", "over_callbacks", "adjustment", "net", "vat", "gross"),
    [
        # one adjustment line of 0.50: VAT 0.095 -> 0.10
        ("basic", [], 0, "0.50", "0.50", "0.10", "0.60"),
        # three callbacks at 0.50: VAT once on 1.50 is 0.29; per line it would have been 3 x 0.10 = 0.30
        ("basic", [], 3, None, "1.50", "0.29", "1.79"),
        # 99.99 + 85 + 169 = 353.99; VAT 67.2581 -> 67.26
        ("plus", [(C, BH), (C, BH), (C, BH), (C, AH)], 0, None, "353.99", "67.26", "421.25"),
        # 85 + 169 + 0.50 = 254.50; VAT 48.355 -> 48.36
        ("basic", [(C, BH), (C, AH)], 1, None, "254.50", "48.36", "302.86"),
    ],
)
def test_vat_is_computed_once_on_the_net_total(plan, incidents, over_callbacks, adjustment, net, vat, gross):
    usage = [incident(n, datetime(2026, 3, 3, 9 + n, tzinfo=BERLIN), s, b) for n, (s, b) in enumerate(incidents)]
    calls = [callback(n, datetime(2026, 3, 4, 9 + n, tzinfo=BERLIN)) for n in range(over_callbacks)]
    adjustments = () if adjustment is None else (adjustment_line(D(adjustment)),)
    result = statement(plan, usage, calls, book=book_with(callback_price=D("0.50")), adjustments=adjustments)
    assert (result.net, result.vat, result.gross) == (D(net), D(vat), D(gross))


def adjustment_line(amount: Decimal, month: Month = Month(2026, 2), number: int = 99) -> AdjustmentLine:
    return AdjustmentLine(ticket_id=ticket(number), month=month, amount=amount, reason="test")


# --- policy versions ------------------------------------------------------------------------------------------

V2 = POLICY.model_copy(
    update={
        "version": "2026-03-15",
        "effective_from": date(2026, 3, 15),
        "incident_prices": {
            **POLICY.incident_prices,
            C: IncidentPrice(business_hours=D("95.00"), after_hours=D("189.00")),
        },
        "plans": {**POLICY.plans, "plus": POLICY.plans["plus"].model_copy(update={"monthly_fee": D("109.99")})},
    }
)
TWO_VERSIONS = PolicyBook(policies=(POLICY, V2))


@pytest.mark.parametrize(
    ("month", "plan", "usage", "fee", "line_prices", "version"),
    [
        # March: the policy in force on 1 March (v1) sets fee and allowance; each incident keeps its own version
        (
            MARCH,
            "basic",
            [("2026-03-10T10:00", V1), ("2026-03-20T10:00", "2026-03-15")],
            "0.00",
            ["85.00", "95.00"],
            V1,
        ),
        (MARCH, "plus", [], "99.99", [], V1),
        (APRIL, "plus", [], "109.99", [], "2026-03-15"),
        (APRIL, "basic", [("2026-04-01T10:00", "2026-03-15")], "0.00", ["95.00"], "2026-03-15"),
    ],
)
def test_each_incident_is_priced_by_the_policy_version_it_was_opened_under(
    month, plan, usage, fee, line_prices, version
):
    incidents = [incident(n, at, C, BH, version=recorded) for n, (at, recorded) in enumerate(usage)]
    result = statement(plan, incidents, month=month, book=TWO_VERSIONS, as_of=datetime(2026, 4, 2, tzinfo=BERLIN))
    assert (result.plan_fee, result.policy_version) == (D(fee), version)
    assert prices(result) == [D(price) for price in line_prices]


# --- closing --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "closing_day", "closes_at_utc"),
    [
        (MARCH, 5, "2026-04-04T22:00:00+00:00"),  # 00:00 CEST on 5 April
        (Month(2026, 12), 5, "2027-01-04T23:00:00+00:00"),  # 00:00 CET
        (Month(2026, 10), 1, "2026-10-31T23:00:00+00:00"),
    ],
)
def test_closing_instant(month, closing_day, closes_at_utc):
    policy = POLICY.model_copy(update={"statement_closing_day": closing_day})
    assert closing_instant(policy, month) == datetime.fromisoformat(closes_at_utc)


@pytest.mark.parametrize(
    ("as_of", "closed_by_operator", "closed"),
    [
        (datetime(2026, 4, 4, 23, 59, 59, tzinfo=BERLIN), False, False),
        (datetime(2026, 4, 5, 0, 0, tzinfo=BERLIN), False, True),
        (datetime(2026, 4, 2, 9, 0, tzinfo=BERLIN), True, True),
    ],
)
def test_a_statement_is_closed_by_an_operator_or_on_the_closing_day(as_of, closed_by_operator, closed):
    result = statement("plus", as_of=as_of, closed=closed_by_operator)
    assert (result.closed, result.as_of) == (closed, as_of)


# --- adjustments after closing --------------------------------------------------------------------------------

PLUS_MONTH = [(1, C, BH), (2, B, AH), (3, C, BH), (4, A, AH)]  # two included, then 85.00 and 510.00


def month_of(rows: list[tuple[int, Severity, Band]], *, withdrawn: frozenset[int] = frozenset()) -> list[Incident]:
    return [incident(n, datetime(2026, 3, 2, 8 + n, tzinfo=BERLIN), s, b, withdrawn=n in withdrawn) for n, s, b in rows]


@pytest.mark.parametrize(
    ("plan", "closed_usage", "recomputed_usage", "expected"),
    [
        # late escalation C -> A of a billable incident: 255 - 85
        ("basic", month_of([(1, C, BH)]), month_of([(1, A, BH)]), [(1, "170.00", "highest severity C -> A")]),
        # withdrawal of a billable incident
        (
            "basic",
            month_of([(1, C, AH)]),
            month_of([(1, C, AH)], withdrawn={1}),
            [(1, "-169.00", "no longer an incident")],
        ),
        # withdrawal of an included incident frees its place: ticket 3 moves into the allowance, ticket 4 stays billed
        (
            "plus",
            month_of(PLUS_MONTH),
            month_of(PLUS_MONTH, withdrawn={1}),
            [(3, "-85.00", "now within the included allowance")],
        ),
        # late escalation of an included incident changes no amount
        ("plus", month_of(PLUS_MONTH), month_of([(1, A, BH), *PLUS_MONTH[1:]]), []),
        # an incident the closed statement missed
        ("basic", [], month_of([(1, B, BH)]), [(1, "159.00", "incident missing from the closed statement")]),
        ("basic", month_of([(1, C, BH)]), month_of([(1, C, BH)]), []),
    ],
)
def test_adjustments_for_a_closed_month(plan, closed_usage, recomputed_usage, expected):
    closed = statement(plan, closed_usage, closed=True)
    recomputed = statement(plan, recomputed_usage, as_of=datetime(2026, 4, 20, tzinfo=BERLIN))
    lines = adjustments_for(closed, recomputed)
    assert [(line.ticket_id, line.month, line.amount, line.reason) for line in lines] == [
        (ticket(n), MARCH, D(amount), reason) for n, amount, reason in expected
    ]


def test_an_adjustment_lands_on_the_next_open_statement_and_in_its_net():
    closed = statement("basic", month_of([(1, C, BH)]), closed=True)
    recomputed = statement("basic", month_of([(1, A, BH)]), as_of=datetime(2026, 4, 20, tzinfo=BERLIN))
    april = statement(
        "plus",
        [incident(5, "2026-04-07T10:00")],
        month=APRIL,
        adjustments=tuple(adjustments_for(closed, recomputed)),
        as_of=datetime(2026, 4, 20, tzinfo=BERLIN),
    )
    # 99.99 + 0.00 (included) + 170.00 = 269.99; VAT 51.2981 -> 51.30
    assert (april.net, april.vat, april.gross) == (D("269.99"), D("51.30"), D("321.29"))
    assert april.adjustments[0].month == MARCH


def test_earlier_adjustments_of_the_same_month_are_not_counted_twice():
    closed = statement("basic", month_of([(1, C, BH)]), closed=True)
    to_b = adjustments_for(closed, statement("basic", month_of([(1, B, BH)])))
    unrelated = adjustment_line(D("5.00"), Month(2026, 2), number=1)
    to_a = adjustments_for(closed, statement("basic", month_of([(1, A, BH)])), already_adjusted=[*to_b, unrelated])
    assert [line.amount for line in to_b] == [D("74.00")]  # 159 - 85
    assert [(line.amount, line.reason) for line in to_a] == [
        (D("96.00"), "highest severity C -> A; less 74.00 adjusted earlier")  # 255 - 85 - 74
    ]


def test_adjustments_come_from_callbacks_over_the_allowance_too():
    book = book_with(callback_price=D("12.50"))
    calls = [callback(n, datetime(2026, 3, 2, 8 + n, tzinfo=BERLIN)) for n in range(6)]
    closed = statement("standard", callbacks=calls[1:], book=book, closed=True)  # five: none over
    recomputed = statement("standard", callbacks=calls, book=book)  # a sixth, done earliest, arrived late
    assert [(line.ticket_id, line.amount, line.reason) for line in adjustments_for(closed, recomputed)] == [
        (ticket(5), D("12.50"), "callback charge changed")
    ]


@pytest.mark.parametrize(
    ("closed_statement", "recomputed", "message"),
    [
        (statement("basic"), statement("basic"), "is open"),
        (statement("basic", closed=True), statement("basic", month=APRIL), "cannot compare"),
    ],
)
def test_adjustments_need_a_closed_statement_of_the_same_month(closed_statement, recomputed, message):
    with pytest.raises(BillingError, match=message):
        adjustments_for(closed_statement, recomputed)


# --- refusals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"incidents": [incident(1, customer="someone-else")]}, BillingError, "someone-else"),
        ({"callbacks": [callback(1, customer="someone-else")]}, BillingError, "someone-else"),
        ({"incidents": [incident(1, "2026-04-01T00:00")]}, BillingError, "is in 2026-04, not 2026-03"),
        ({"incidents": [incident(1), incident(1, "2026-03-11T10:00")]}, BillingError, "more than once"),
        ({"adjustments": (adjustment_line(D("1.00"), MARCH),)}, BillingError, "later statement"),
        ({"plan": "gold"}, PolicyError, "unknown plan 'gold'"),
        ({"month": Month(2021, 6)}, PolicyError, "no policy in force"),
        ({"incidents": [incident(1, department="sales")]}, PolicyError, "unknown department 'sales'"),
        ({"incidents": [incident(1, version="1999-01-01")]}, PolicyError, "unknown policy version"),
        ({"as_of": datetime(2026, 3, 31, 20, 0)}, ValueError, "no time zone"),
    ],
)
def test_usage_that_does_not_belong_on_the_statement_is_refused(arguments, error, message):
    with pytest.raises(error, match=message):
        statement(**{"plan": "plus", **arguments})


# --- money is exact -------------------------------------------------------------------------------------------


def _floats_in(value: object) -> list[float]:
    if isinstance(value, dict):
        return [found for item in value.values() for found in _floats_in(item)]
    if isinstance(value, list):
        return [found for item in value for found in _floats_in(item)]
    return [value] if isinstance(value, float) else []


def test_a_statement_dumps_to_json_without_a_float():
    book = book_with(callback_price=D("12.50"))
    result = statement(
        "basic",
        [incident(1, severity=A, band=AH)],
        [callback(1)],
        book=book,
        adjustments=(adjustment_line(D("-5.5")),),
    )
    dumped = result.model_dump(mode="json")
    assert _floats_in(json.loads(json.dumps(dumped))) == []
    assert (dumped["month"], dumped["plan_fee"], dumped["net"], dumped["vat"], dumped["gross"]) == (
        "2026-03",
        "0.00",
        "517.00",  # 510.00 + 12.50 - 5.50
        "98.23",  # 517.00 x 0.19, exact
        "615.23",
    )
    assert dumped["incident_lines"][0]["price"] == "510.00"
    assert dumped["adjustments"][0] == {
        "ticket_id": str(ticket(99)),
        "month": "2026-02",
        "amount": "-5.50",
        "reason": "test",
        "reference": None,
        "source_event_ids": [],
    }
    assert Statement.model_validate_json(result.model_dump_json()) == result


@pytest.mark.parametrize("amount", [0.5, "0.005", Decimal("1.001")])
def test_money_refuses_floats_and_fractions_of_a_cent(amount):
    with pytest.raises(ValidationError):
        AdjustmentLine(ticket_id=ticket(1), month=MARCH, amount=amount, reason="test")


def test_a_statement_whose_totals_do_not_add_up_is_refused():
    dumped = statement("plus", [incident(1), incident(2), incident(3)]).model_dump(mode="json")
    with pytest.raises(ValidationError, match="do not add up"):
        Statement.model_validate({**dumped, "net": "99.99"})


# --- properties -----------------------------------------------------------------------------------------------

MINUTES_IN_MARCH = 31 * 24 * 60 - 60  # the clocks go forward on 29 March
MARCH_START_UTC = MARCH.first_instant(BERLIN).astimezone(UTC)
usage_rows = st.tuples(
    st.sampled_from(list(Severity)),
    st.sampled_from(list(Band)),
    st.integers(0, MINUTES_IN_MARCH - 1),
    st.sampled_from(["trouble", "product", "accounting"]),
    st.booleans(),
)
cents = st.integers(-100_000, 100_000).map(lambda n: Decimal(n) / 100)


@settings(max_examples=150, deadline=None)
@given(
    plan=st.sampled_from(sorted(POLICY.plans)),
    rows=st.lists(usage_rows, max_size=30),
    callback_minutes=st.lists(st.integers(0, MINUTES_IN_MARCH - 1), max_size=30),
    callback_price=st.none() | st.integers(0, 5_000).map(lambda n: Decimal(n) / 100),
    adjustment_amounts=st.lists(cents, max_size=4),
)
def test_totals_and_allowance_hold_for_any_month(plan, rows, callback_minutes, callback_price, adjustment_amounts):
    usage = [
        incident(n + 1, MARCH_START_UTC + timedelta(minutes=minute), s, b, department=department, withdrawn=withdrawn)
        for n, (s, b, minute, department, withdrawn) in enumerate(rows)
    ]
    calls = [callback(n + 1, MARCH_START_UTC + timedelta(minutes=minute)) for n, minute in enumerate(callback_minutes)]
    adjustments = tuple(adjustment_line(amount, number=n) for n, amount in enumerate(adjustment_amounts))
    result = statement(plan, usage, calls, book=book_with(callback_price=callback_price), adjustments=adjustments)

    lines_total = sum((line.price for line in result.incident_lines), Decimal("0"))
    callbacks_total = sum((line.price for line in result.callback_lines), Decimal("0"))
    adjustments_total = sum((line.amount for line in adjustments), Decimal("0"))
    assert result.net == result.plan_fee + lines_total + callbacks_total + adjustments_total
    assert result.gross == result.net + result.vat
    assert abs(result.vat - result.net * POLICY.vat_rate) <= Decimal("0.005")
    counted = sum(1 for _, _, _, department, withdrawn in rows if department != "accounting" and not withdrawn)
    allowance = POLICY.plan(plan).included_incidents
    assert sum(line.included for line in result.incident_lines) == min(allowance, counted) == result.included_used
    assert result.callbacks_over == max(0, len(calls) - POLICY.plan(plan).callbacks_per_month)
