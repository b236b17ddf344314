"""Statements read from the billing fold: one customer's month, a month of all customers, or everything."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from domain.money import Month
from domain.statement import Statement
from projections.billing.fold import BillingFold


def statement(fold: BillingFold, customer_id: str, month: Month, as_of: datetime) -> Statement | None:
    """The customer's statement for the month, or None when no plan of theirs is billed for it.

    A frozen statement is returned as it was closed. An open one is built now and says `as_of`; if `as_of` is
    past its closing instant it is shown closed, as of that instant.
    """
    frozen = fold.frozen.get((customer_id, month))
    if frozen is not None:
        return frozen
    plan = fold.usage.billed_plan(customer_id, month, fold.book)
    if plan is None or month < first_policy_month(fold):
        return None
    if month in fold.closed:  # closed before anything of this customer was known
        return fold.build(customer_id, month, plan, fold.closed[month], closed=True)
    return fold.build(customer_id, month, plan, min(as_of, fold.closing_instant(month)))


def statements(fold: BillingFold, month: Month, as_of: datetime) -> list[Statement]:
    """Every customer's statement for the month, by customer id."""
    found = (statement(fold, customer_id, month, as_of) for customer_id in customers(fold))
    return [s for s in found if s is not None]


def all_statements(fold: BillingFold, as_of: datetime) -> list[Statement]:
    """Every statement of every customer, by customer and month: each month a plan is in force, up to
    `as_of`'s month (or a later month with usage or adjustments)."""
    found = (statement(fold, c, m, as_of) for c in customers(fold) for m in billed_months(fold, c, as_of))
    return [s for s in found if s is not None]


def customers(fold: BillingFold) -> list[str]:
    """Every customer with a plan, by id."""
    return sorted(fold.usage.subscriptions)


def billed_months(fold: BillingFold, customer_id: str, as_of: datetime) -> Iterator[Month]:
    """The customer's months from their first plan on, including months with no ticket (the fee alone)."""
    month = fold.usage.first_month(customer_id, fold.book)
    if month is None:
        return
    last = max(Month.of(as_of, fold.zone), _last_activity(fold, customer_id) or month)
    while month <= last:
        yield month
        month = month.next()


def _last_activity(fold: BillingFold, customer_id: str) -> Month | None:
    """The latest month with usage or carried adjustments: it may lie after `as_of`'s month."""
    months = [month for (owner, month) in fold.carried if owner == customer_id]
    used = fold.usage.last_used_month(customer_id, fold.book)
    return max([*months, used] if used else months, default=None)


def first_policy_month(fold: BillingFold) -> Month:
    """No month before the first policy version can be billed: no prices existed."""
    first = fold.book.policies[0]
    return Month.of(first.starts_at, fold.zone)
