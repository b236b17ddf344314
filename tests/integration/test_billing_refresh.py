"""Billing's coalesced statements on SQLite and PostgreSQL: marks survive a crash, a refresh clears only its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.compose.projections import build_projection_database
from infra.settings import Settings
from projections.billing import BillingFold, all_statements
from projections.billing.projection import BillingProjection
from projections.database import ProjectionDatabase
from projections.sla.projection import SlaProjection
from tests.unit.test_billing_projection import (
    CLOSE_MARCH,
    ESCALATE_LATE,
    MarkedMeanwhile,
    marked,
    marked_statements,
    recorded_events,
    stored_statements,
)

ADJUSTMENTS = (
    "SELECT month, kind, reference, amount, adjusted_month FROM {lines} WHERE kind = 'adjustment' ORDER BY 1, 3"
)


@pytest.fixture
def db(store_settings: Settings) -> Iterator[ProjectionDatabase]:
    database = build_projection_database(store_settings)
    database.create_schema()
    yield database
    database.close()


def folded_in_batches(projection: BillingProjection, events: list, batch: int) -> None:
    with projection.db.transaction() as cursor:
        SlaProjection(projection.db).create_tables(cursor)  # the analysts' views join them: the projector's order
        projection.create_tables(cursor)
    for start in range(0, len(events), batch):
        with projection.db.transaction() as cursor:
            projection.apply(cursor, events[start : start + batch])


def test_marks_survive_a_crash_between_the_batches_and_their_refresh(db, policy_book):
    events = recorded_events(policy_book, [CLOSE_MARCH, ESCALATE_LATE])
    folded_in_batches(BillingProjection(db, policy_book), events, 5)  # then "crashed": never refreshed
    left = marked(db)
    assert left and stored_statements(db) == []
    assert BillingProjection(db, policy_book).refresh() == len(left)  # a new projection, as after a restart
    fold = BillingFold(policy_book).apply_all(events)
    assert stored_statements(db) == all_statements(fold, fold.clock) and marked(db) == {}
    lines = db.query(ADJUSTMENTS.format(lines=db.table("billing_statement_lines")))
    assert [(m, k, r, str(a), am) for m, k, r, a, am in lines] == [
        ("2026-04", "adjustment", "crm:A-6", "74.00", "2026-03")
    ]


def test_a_refresh_leaves_the_marks_set_meanwhile(db, policy_book):
    events = recorded_events(policy_book, [CLOSE_MARCH, ESCALATE_LATE])
    late = next(i for i, e in enumerate(events) if e.type == "Escalated" and e.occurred_at.month == 4)
    projection = MarkedMeanwhile(db, policy_book, events[late:])
    folded_in_batches(projection, events[:late], 1_000)
    read = marked_statements(db)
    projection.refresh()
    left = marked_statements(db)  # the late escalation's customer, marked again meanwhile: March and April
    assert {c for c, _ in left} == {"acme"} and {m for _, m in left} == {"2026-03", "2026-04"}
    assert all(count == read.get(key, 0) + 1 for key, count in left.items())
    projection.refresh()
    fold = BillingFold(policy_book).apply_all(events)
    assert stored_statements(db) == all_statements(fold, fold.clock) and marked(db) == {}
