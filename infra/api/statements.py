"""Where the API finds statements: today a fold of the whole event store, recomputed per request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from domain.money import Month
from domain.policy import PolicyBook
from domain.statement import Statement
from infra.compose.desk import build_desk
from infra.settings import Settings
from projections.billing import BillingFold, statement, statements

# (month, as of, customer or None for every customer) -> the statements found, by customer id.
StatementLookup = Callable[[Month, datetime, str | None], list[Statement]]


def statements_from_store(settings: Settings, book: PolicyBook) -> StatementLookup:
    """The one place the API reads statements: point it at the billing tables once they exist."""

    def lookup(month: Month, as_of: datetime, customer: str | None) -> list[Statement]:
        fold = _fold(settings, book)
        if customer is None:
            return statements(fold, month, as_of)
        found = statement(fold, customer, month, as_of) if customer in fold.usage.subscriptions else None
        return [found] if found else []

    return lookup


def _fold(settings: Settings, book: PolicyBook) -> BillingFold:
    desk = build_desk(settings, book)
    try:
        return BillingFold(book).apply_all(desk.recorded_events())
    finally:
        desk.close()
