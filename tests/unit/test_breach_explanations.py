"""The breach explanations table: for every breach, what `nettask sla explain` says, in batches of any size."""

from __future__ import annotations

import orjson
import pytest

from domain import events as ev
from domain.explain import explain_metric
from projections.sla.explanations import ExplanationProjection, explanations_by_ticket
from tests.unit.test_billing_projection import memory_database, recorded_events


def projected(book, events: list, batch: int):
    db = memory_database()
    projection = ExplanationProjection(db, book)
    with db.transaction() as cursor:
        projection.create_tables(cursor)
    for start in range(0, len(events), batch):
        with db.transaction() as cursor:
            result = projection.apply(cursor, events[start : start + batch])
            assert result.failures == []
    return db


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_every_breach_is_explained_as_the_event_store_explains_it(policy_book, batch):
    events = [e for e in recorded_events(policy_book) if isinstance(e, ev.TicketEvent)]
    breaches = [e for e in events if isinstance(e, ev.SlaBreached)]
    assert breaches, "the example month has breaches"

    db = projected(policy_book, events, batch)

    for breach in breaches:
        history = [e for e in events if e.ticket_id == breach.ticket_id]
        expected = explain_metric(history, breach.metric, policy_book)
        stored = explanations_by_ticket(db, str(breach.ticket_id))[breach.metric]
        assert stored == orjson.loads(expected.model_dump_json())
        assert stored["pauses"] is not None and stored["policy_version"] == "2021-07-01"


def test_events_delivered_twice_are_kept_once(policy_book):
    events = [e for e in recorded_events(policy_book) if isinstance(e, ev.TicketEvent)]
    db = memory_database()
    projection = ExplanationProjection(db, policy_book)
    with db.transaction() as cursor:
        projection.create_tables(cursor)
        projection.apply(cursor, events)
        again = projection.apply(cursor, events)

    assert (again.applied, again.repeats) == (0, len(events))
    assert db.query("SELECT COUNT(*) FROM sla_event_history")[0][0] == len(events)
