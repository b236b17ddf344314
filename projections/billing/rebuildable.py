"""The billing view as rebuild and verify see it: its tables, its projection, the rows that must match the store."""

from __future__ import annotations

from typing import Any

from domain.policy import PolicyBook
from projections.billing import tables
from projections.billing.projection import BillingProjection, create_closings
from projections.database import ProjectionDatabase
from projections.rebuild import Comparison, RebuildableView

BILLING = "billing"
COMPARED_STATEMENT_COLUMNS = tuple(c for c in tables.STATEMENT_COLUMNS if c not in ("as_of", "statement"))


def billing_view(book: PolicyBook) -> RebuildableView:
    """Billing folds with the policy book (prices, VAT, closing days), so its view is made for one book."""
    return RebuildableView(
        name=BILLING,
        tables=tables.TABLES,
        projection=lambda db: BillingProjection(db, book),
        create_bare_tables=_bare_tables,
        create_indexes=tables.create_indexes,
        settle=lambda projection, cursor: projection.refresh_in(cursor),
        comparisons=(
            # The fold's state (its rows, closings) is left out: the statements say what it means. So is
            # an open statement's as_of (in its column and its JSON): it is the fold's clock when the customer was
            # last touched, which a replay in other batches sets otherwise; reads show the clock (reads.py).
            Comparison(tables.STATEMENTS, ("customer_id", "month"), COMPARED_STATEMENT_COLUMNS),
            Comparison(tables.LINES, ("customer_id", "month", "line"), tables.LINE_COLUMNS),
            Comparison(tables.SEEN, ("event_id",), ("event_id", "event_type", "occurred_at")),
        ),
    )


def _bare_tables(db: ProjectionDatabase, cursor: Any) -> None:
    # An earlier version's state, which a rebuild replaces: dropped with the live tables in the switch-over.
    cursor.execute(f"DROP TABLE IF EXISTS {db.table(tables.LEGACY_CUSTOMERS)}")
    tables.create_bare_tables(db, cursor)
    create_closings(db, cursor)
