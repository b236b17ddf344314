"""Billing rules: one customer-month of incidents and callbacks priced into a statement, as pure functions."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.errors import DomainError
from domain.money import CENT, ZERO, Month
from domain.policy import Band, Plan, Policy, PolicyBook, Severity
from domain.statement import (
    AdjustmentLine,
    CallbackLine,
    CallbackUse,
    Incident,
    IncidentCount,
    IncidentLine,
    Statement,
    total,
)

WORST_FIRST = tuple(sorted(Severity, key=lambda severity: severity.rank, reverse=True))


class BillingError(DomainError):
    """Usage handed to the wrong statement (another customer or month), counted twice, or misplaced."""


def build_statement(
    book: PolicyBook,
    customer_id: str,
    month: Month,
    plan_name: str,
    incidents: Iterable[Incident],
    callbacks: Iterable[CallbackUse],
    *,
    as_of: datetime,
    adjustments: Iterable[AdjustmentLine] = (),
    closed: bool = False,
) -> Statement:
    """The customer's statement for `month`; `closed` records an operator's close before the closing day."""
    policy = policy_for_month(book, month)
    plan = policy.plan(plan_name)
    incidents, callbacks, adjustments = tuple(incidents), tuple(callbacks), tuple(adjustments)
    _refuse_foreign_usage(customer_id, month, policy.calendar.zone, incidents, callbacks)
    _refuse_misplaced_adjustments(month, adjustments)
    lines = incident_lines(book, counted_incidents(book, incidents), plan.included_incidents)
    calls = callback_lines(callbacks, plan.callbacks_per_month, policy.callback_price)
    net = plan.monthly_fee + total(lines) + total(calls) + total(adjustments)
    return Statement(
        customer_id=customer_id,
        month=month,
        plan=plan_name,
        policy_version=policy.version,
        currency=policy.currency,
        plan_fee=plan.monthly_fee,
        **_incident_section(lines, plan),
        **_callback_section(calls, plan),
        adjustments=adjustments,
        **_totals(net, policy.vat_rate),
        as_of=as_of,
        closed=closed or is_past_closing(policy, month, as_of),
    )


def _incident_section(lines: tuple[IncidentLine, ...], plan: Plan) -> dict[str, Any]:
    return {
        "incident_counts": incident_counts(lines),
        "included_allowance": plan.included_incidents,
        "included_used": sum(line.included for line in lines),
        "incident_lines": lines,
    }


def _callback_section(calls: tuple[CallbackLine, ...], plan: Plan) -> dict[str, Any]:
    return {
        "callbacks_used": len(calls),
        "callbacks_included": plan.callbacks_per_month,
        "callbacks_over": sum(call.over for call in calls),
        "callback_charge": total(calls),
        "callback_lines": calls,
    }


def _totals(net: Decimal, vat_rate: Decimal) -> dict[str, Any]:
    vat = vat_on(net, vat_rate)
    return {"net": net, "vat_rate": vat_rate, "vat": vat, "gross": net + vat}


def policy_for_month(book: PolicyBook, month: Month) -> Policy:
    """The policy in force at the month's first instant: it sets the plan fee, allowances and VAT."""
    # Months are the current calendar's; a version can only pick its zone once it is known to be in force.
    return book.in_force(month.first_instant(book.latest.calendar.zone))


def counted_incidents(book: PolicyBook, incidents: Iterable[Incident]) -> list[Incident]:
    """The tickets that count as incidents, each judged by the policy version it was opened under."""
    return [incident for incident in incidents if is_incident(book.version(incident.policy_version), incident)]


def is_incident(policy: Policy, incident: Incident) -> bool:
    """A ticket of a department that counts as incident, unless withdrawn before its first response."""
    return policy.department(incident.department).incident and not incident.withdrawn_before_response


def opening_order(incident: Incident) -> tuple[datetime, UUID]:
    """Included incidents are used up in opening order; the ticket id breaks a tie at the same instant."""
    return incident.opened_at, incident.ticket_id


def incident_lines(book: PolicyBook, incidents: Iterable[Incident], allowance: int) -> tuple[IncidentLine, ...]:
    ordered = sorted(incidents, key=opening_order)
    return tuple(_incident_line(book, incident, position < allowance) for position, incident in enumerate(ordered))


def _incident_line(book: PolicyBook, incident: Incident, included: bool) -> IncidentLine:
    price = ZERO if included else incident_price(book.version(incident.policy_version), incident)
    # Trusted: every value comes from a validated Incident or the validated policy, and a statement rebuilt for
    # every refresh has thousands of lines, where validating each again would cost most of the build.
    return IncidentLine.trusted(
        ticket_id=incident.ticket_id,
        opened_at=incident.opened_at,
        department=incident.department,
        severity=incident.highest_severity,
        band=incident.band,
        policy_version=incident.policy_version,
        included=included,
        price=price,
        source_event_ids=incident.source_event_ids,
        reference=incident.reference,
    )


def incident_price(policy: Policy, incident: Incident) -> Decimal:
    """The price of the highest severity reached, in the band at opening, from the version in force then."""
    return policy.incident_prices[incident.highest_severity].for_band(incident.band)


def incident_counts(lines: Iterable[IncidentLine]) -> tuple[IncidentCount, ...]:
    """Every (severity, band) pair, worst severity first, business hours first; zeros included."""
    tally = Counter((line.severity, line.band) for line in lines)
    return tuple(
        IncidentCount(severity=severity, band=band, count=tally[severity, band])
        for severity in WORST_FIRST
        for band in Band
    )


def callback_lines(
    callbacks: Iterable[CallbackUse], allowance: int, price_over: Decimal | None
) -> tuple[CallbackLine, ...]:
    """Callbacks in the order carried out; those beyond the allowance are over, priced only if set."""
    ordered = sorted(callbacks, key=lambda callback: (callback.done_at, callback.event_id))
    return tuple(_callback_line(call, position >= allowance, price_over) for position, call in enumerate(ordered))


def _callback_line(callback: CallbackUse, over: bool, price_over: Decimal | None) -> CallbackLine:
    price = price_over if over and price_over is not None else ZERO
    return CallbackLine(
        ticket_id=callback.ticket_id,
        done_at=callback.done_at,
        event_id=callback.event_id,
        over=over,
        price=price,
        reference=callback.reference,
    )


def vat_on(net: Decimal, rate: Decimal) -> Decimal:
    """VAT on the statement's net total, rounded half up to the cent (a credit rounds away from zero too)."""
    return (net * rate).quantize(CENT, rounding=ROUND_HALF_UP)


def closing_instant(policy: Policy, month: Month) -> datetime:
    """When `month` closes by itself: 00:00 on the policy's closing day of the next month, in its zone."""
    return month.next().first_instant(policy.calendar.zone).replace(day=policy.statement_closing_day)


def is_past_closing(policy: Policy, month: Month, at: datetime) -> bool:
    """Whether `month` has closed by itself at the instant `at`."""
    if at.tzinfo is None:
        raise ValueError(f"{at.isoformat()} has no time zone")
    return at >= closing_instant(policy, month)


def _refuse_foreign_usage(
    customer_id: str,
    month: Month,
    zone: ZoneInfo,
    incidents: tuple[Incident, ...],
    callbacks: tuple[CallbackUse, ...],
) -> None:
    """Refused rather than skipped: usage dropped silently would hide a caller's mistake and lose money."""
    uses = [(i.ticket_id, i.customer_id, i.opened_at) for i in incidents]
    uses += [(c.ticket_id, c.customer_id, c.done_at) for c in callbacks]
    for ticket_id, owner, at in uses:
        if owner != customer_id:
            raise BillingError(f"ticket {ticket_id} is customer {owner!r}'s, not {customer_id!r}'s")
        if Month.of(at, zone) != month:
            raise BillingError(f"ticket {ticket_id}: {at.isoformat()} is in {Month.of(at, zone)}, not {month}")
    _refuse_repeats("ticket", [incident.ticket_id for incident in incidents])
    _refuse_repeats("callback event", [callback.event_id for callback in callbacks])


def _refuse_repeats(what: str, ids: list[UUID]) -> None:
    repeated = sorted(str(id_) for id_, seen in Counter(ids).items() if seen > 1)
    if repeated:
        raise BillingError(f"{what} given more than once: {', '.join(repeated)}")


def _refuse_misplaced_adjustments(month: Month, adjustments: tuple[AdjustmentLine, ...]) -> None:
    for adjustment in adjustments:
        if adjustment.month >= month:
            raise BillingError(
                f"adjustment for ticket {adjustment.ticket_id} of {adjustment.month} "
                f"belongs on a later statement than {month}'s"
            )


def adjustments_for(
    closed: Statement, recomputed: Statement, *, already_adjusted: Iterable[AdjustmentLine] = ()
) -> list[AdjustmentLine]:
    """Per ticket: what the closed month would now charge more (or less), less earlier adjustments."""
    _refuse_incomparable(closed, recomputed)
    issued = _adjusted_by_ticket(closed.month, already_adjusted)
    tickets = sorted(closed.ticket_ids() | recomputed.ticket_ids() | issued.keys())
    lines = (_adjustment(closed, recomputed, ticket, issued.get(ticket, ZERO)) for ticket in tickets)
    return [line for line in lines if line is not None]


def _refuse_incomparable(closed: Statement, recomputed: Statement) -> None:
    if not closed.closed:
        raise BillingError(f"statement {closed.customer_id} {closed.month} is open: rebuild it instead")
    if (closed.customer_id, closed.month) != (recomputed.customer_id, recomputed.month):
        other = f"{recomputed.customer_id} {recomputed.month}"
        raise BillingError(f"cannot compare {closed.customer_id} {closed.month} with {other}")


def _adjusted_by_ticket(month: Month, adjustments: Iterable[AdjustmentLine]) -> dict[UUID, Decimal]:
    issued: dict[UUID, Decimal] = defaultdict(lambda: ZERO)
    for adjustment in adjustments:
        if adjustment.month == month:
            issued[adjustment.ticket_id] += adjustment.amount
    return dict(issued)


def _adjustment(closed: Statement, recomputed: Statement, ticket_id: UUID, issued: Decimal) -> AdjustmentLine | None:
    before, after = closed.incident_line(ticket_id), recomputed.incident_line(ticket_id)
    incident_change = _price(after) - _price(before)
    callback_change = recomputed.callback_charge_for(ticket_id) - closed.callback_charge_for(ticket_id)
    amount = incident_change + callback_change - issued
    if not amount:
        return None
    reasons = [_incident_reason(before, after)] if incident_change else []
    reasons += ["callback charge changed"] if callback_change else []
    reasons += [f"less {issued} adjusted earlier"] if issued else []
    reference = recomputed.reference_of(ticket_id) or closed.reference_of(ticket_id)
    return AdjustmentLine(
        ticket_id=ticket_id, month=closed.month, amount=amount, reason="; ".join(reasons), reference=reference
    )


def _price(line: IncidentLine | None) -> Decimal:
    return ZERO if line is None else line.price


def _incident_reason(before: IncidentLine | None, after: IncidentLine | None) -> str:
    if after is None:
        return "no longer an incident"
    if before is None:
        return "incident missing from the closed statement"
    if before.included != after.included:
        return "now within the included allowance" if after.included else "no longer within the included allowance"
    if before.severity != after.severity:
        return f"highest severity {before.severity} -> {after.severity}"
    return "incident price changed"
