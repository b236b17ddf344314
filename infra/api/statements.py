"""Where the API finds statements: the billing projection's tables, or a fold of the store for another instant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from domain.money import Month
from domain.policy import PolicyBook
from domain.statement import Statement
from infra.api.sources import Sources
from infra.compose.desk import build_desk
from infra.settings import Settings
from projections.billing import BillingFold, statement, statements
from projections.billing.reads import stored_statement, stored_statements

# (month, as of or None for the projection as it stands, customer or None for every customer) -> the statements
# found, by customer id.
StatementLookup = Callable[[Month, datetime | None, str | None], list[Statement]]


def statements_lookup(sources: Sources) -> StatementLookup:
    """The billing tables, as the projector last wrote them; an explicit instant is recomputed from the store,
    as the CLI's --as-of is: only the store can say what a statement was at another instant."""

    def lookup(month: Month, as_of: datetime | None, customer: str | None) -> list[Statement]:
        if as_of is None:
            return _projected(sources, month, customer)
        return _recomputed(sources.settings, sources.book, month, as_of, customer)

    return lookup


def _projected(sources: Sources, month: Month, customer: str | None) -> list[Statement]:
    with sources.views() as db:
        if customer is None:
            return stored_statements(db, month)
        found = stored_statement(db, customer, month)
    return [found] if found else []


def _recomputed(settings: Settings, book: PolicyBook, month: Month, as_of: datetime, customer: str | None):
    fold = _fold(settings, book)
    if customer is None:
        return statements(fold, month, as_of)
    found = statement(fold, customer, month, as_of) if customer in fold.usage.subscriptions else None
    return [found] if found else []


def _fold(settings: Settings, book: PolicyBook) -> BillingFold:
    desk = build_desk(settings, book)
    try:
        return BillingFold(book).apply_all(desk.recorded_events())
    finally:
        desk.close()
