"""Parsed states kept between batches: trusted only while the database holds the same text, bounded in number."""

from __future__ import annotations

import sqlite3

import pytest

from domain.sla import MetricState
from projections.database import ProjectionDatabase
from projections.sla import queries
from projections.sla.projection import SlaProjection
from projections.state_cache import StateCache
from tests.unit.builders import opened, respond


def counting_cache(limit: int = 10) -> tuple[StateCache[dict], list[str]]:
    parsed: list[str] = []

    def parse(text: str) -> dict:
        parsed.append(text)
        return {"text": text}

    return StateCache(parse, lambda state: state["text"], limit), parsed


def test_a_text_read_or_written_before_is_not_parsed_again_and_any_other_text_is():
    cache, parsed = counting_cache()
    first = cache.load("t1", "v1")
    assert cache.load("t1", "v1") is first
    written = cache.dump("t1", {"text": "v2"})
    assert cache.load("t1", written) == {"text": "v2"}
    assert cache.load("t1", "v1") == {"text": "v1"}  # the row went back (a rolled-back batch): parsed afresh
    assert parsed == ["v1", "v1"]


def test_the_least_recently_used_state_is_dropped_past_the_limit():
    cache, parsed = counting_cache(limit=2)
    cache.load("a", "1")
    cache.load("b", "1")
    cache.dump("a", {"text": "2"})  # a used again: b is now the oldest
    cache.load("c", "1")
    assert len(cache) == 2
    cache.load("a", "2")
    cache.load("b", "1")
    assert parsed == ["1", "1", "1", "1"]  # a, b, c, and b again after it was dropped


@pytest.fixture
def db() -> ProjectionDatabase:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    return ProjectionDatabase(lambda: connection)


def test_a_batch_rolled_back_leaves_no_state_behind_in_the_projection(db):
    projection = SlaProjection(db)
    with db.transaction() as cursor:
        projection.create_tables(cursor)
    story = opened()
    story.send(respond(story.id, "2026-03-02T11:00+01:00"))
    opening, response = story.events()
    with db.transaction() as cursor:
        projection.apply(cursor, [opening])
    with pytest.raises(RuntimeError), db.transaction() as cursor:
        projection.apply(cursor, [response])
        raise RuntimeError("the dead letters could not be sent: nothing of the batch commits")

    with db.transaction() as cursor:
        result = projection.apply(cursor, [response])  # delivered again after the failure

    assert (result.applied, result.repeats, result.failures) == (1, 0, [])
    assert len(queries.timeline(db, str(story.id))) == 2
    [metric] = queries.metrics_of(db, str(story.id))
    assert metric["state"] == MetricState.MET.value


def test_a_row_changed_by_another_writer_is_read_again(db):
    """After a rebalance another projector may have folded a ticket further: its row, not the memo, counts."""
    mine, theirs = SlaProjection(db), SlaProjection(db)
    with db.transaction() as cursor:
        mine.create_tables(cursor)
    story = opened()
    story.send(respond(story.id, "2026-03-02T11:00+01:00"))
    opening, response = story.events()
    with db.transaction() as cursor:
        mine.apply(cursor, [opening])
    with db.transaction() as cursor:
        theirs.apply(cursor, [response])
    with db.transaction() as cursor:
        result = mine.apply(cursor, [response])

    assert (result.applied, result.repeats) == (0, 1)


def test_holding_fewer_states_drops_the_least_recently_used_at_once():
    cache, parsed = counting_cache()
    for key in "abcd":
        cache.load(key, "1")
    cache.dump("a", {"text": "1"})  # written again: now the most recent
    cache.hold_at_most(2)
    assert len(cache) == 2
    cache.load("a", "1")
    cache.load("d", "1")
    cache.load("b", "1")
    assert parsed == ["1"] * 5, "a and d are held still, b was dropped"
