"""The projector's protocol with fake Kafka clients and an in-memory database: offsets, repeats, dead letters."""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Iterator
from dataclasses import replace

import orjson
import pytest
from kafka import TopicPartition

from consumers.projector import Projector
from consumers.records import Record
from infra.messages import DLQ_KIND, MESSAGE_TYPE, header
from projections.database import ProjectionDatabase
from projections.sla import queries
from projections.sla.explanations import ExplanationProjection
from projections.sla.projection import SlaProjection
from tests.unit.builders import opened, respond

TOPIC = "tickets.events"
PARTITION = TopicPartition(TOPIC, 0)


class FakeConsumer:
    """Hands out the batches it was given, one per poll, and remembers seeks."""

    def __init__(self, listener):
        self.listener = listener
        self.batches: list[dict] = []
        self.seeks: dict[TopicPartition, int] = {}

    def poll(self, timeout_ms: int) -> dict:
        return self.batches.pop(0) if self.batches else {}

    def assignment(self) -> set[TopicPartition]:
        return {PARTITION}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks[partition] = offset

    def close(self) -> None:
        pass


class FakeSend:
    def get(self, timeout: float) -> None:
        pass


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list]] = []

    def send(self, topic: str, key=None, value=None, headers=None) -> FakeSend:
        self.sent.append((topic, headers))
        return FakeSend()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def projector() -> Iterator[Projector]:
    db = ProjectionDatabase(lambda: sqlite3.connect(":memory:", isolation_level=None))
    with Projector(
        db, [SlaProjection(db)], FakeConsumer, FakeProducer(), topic=TOPIC, dlq_topic="dlq", group="g"
    ) as projector:
        yield projector


def records(events, first_offset: int = 0) -> list[Record]:
    return [
        Record(TOPIC, 0, first_offset + n, str(e.ticket_id).encode(), e.model_dump_json().encode(),
               [(MESSAGE_TYPE, e.type.encode())])
        for n, e in enumerate(events)
    ]  # fmt: skip


def stored_offsets(projector: Projector) -> dict[int, int]:
    with projector.db.transaction() as cursor:
        return projector.db.stored_offsets(cursor, "g", TOPIC)


def test_a_batch_is_applied_with_its_offsets_and_a_redelivered_batch_changes_nothing(projector):
    story = opened()
    story.send(respond(story.id, "2026-03-02T11:00+01:00"))
    batch = {PARTITION: records(story.events())}
    projector.consumer.batches += [batch, batch]

    assert projector.process_once() == 2
    assert stored_offsets(projector) == {0: 2}
    assert projector.process_once() == 2  # Kafka delivered it again: the stored offsets say it was applied

    assert (projector.stats.applied, projector.stats.repeats) == (2, 0)
    assert len(queries.timeline(projector.db, str(story.id))) == 2


def test_a_repeated_event_at_a_new_offset_is_recognised_by_its_version(projector):
    story = opened()
    events = story.events()
    projector.consumer.batches += [{PARTITION: records(events)}, {PARTITION: records(events, first_offset=1)}]
    projector.process_once()
    projector.process_once()

    assert (projector.stats.applied, projector.stats.repeats) == (1, 1)
    assert stored_offsets(projector) == {0: 2}


def test_a_message_that_is_no_event_is_dead_lettered_and_the_batch_goes_on(projector):
    story = opened()
    junk = Record(TOPIC, 0, 0, b"k", b"{oops", [(MESSAGE_TYPE, b"Opened")])
    projector.consumer.batches.append({PARTITION: [junk, *records(story.events(), first_offset=1)]})
    projector.process_once()

    [(topic, headers)] = projector.dead_letters.producer.sent
    assert (topic, header(headers, DLQ_KIND)) == ("dlq", "invalid-json")
    assert projector.stats.applied == 1
    assert stored_offsets(projector) == {0: 2}


def test_a_newly_assigned_partition_is_moved_to_its_stored_offset_and_its_fetched_records_dropped(projector):
    story = opened()
    projector.consumer.batches.append({PARTITION: records(story.events())})
    projector.process_once()
    projector.assignments.on_partitions_assigned([PARTITION])
    projector.consumer.batches.append({PARTITION: records(story.events())})

    assert projector.process_once() == 0
    assert projector.consumer.seeks == {PARTITION: 1}


class CountedRefresh(SlaProjection):
    """The SLA view with a deferred part that only counts when the projector asks for it."""

    def __init__(self, db):
        super().__init__(db)
        self.refreshes = 0

    def refresh(self) -> int:
        self.refreshes += 1
        return 0


def refreshing_projector(refresh_every_ms: int) -> Projector:
    db = ProjectionDatabase(lambda: sqlite3.connect(":memory:", isolation_level=None))
    return Projector(
        db, [CountedRefresh(db)], FakeConsumer, FakeProducer(), topic=TOPIC, dlq_topic="dlq", group="g",
        refresh_every_ms=refresh_every_ms,
    )  # fmt: skip


def test_deferred_work_waits_for_its_interval_and_is_done_when_idle_and_on_close():
    story = opened()
    story.send(respond(story.id, "2026-03-02T11:00+01:00"))
    events = story.events()
    projector = refreshing_projector(refresh_every_ms=3_600_000)
    projection = projector.projections[0]
    projector.consumer.batches += [{PARTITION: records(events[:1])}, {PARTITION: records(events[1:], 1)}]
    projector.process_once()
    assert projection.refreshes == 1  # the first batch: marks a crash may have left are due at once
    projector.process_once()
    assert projection.refreshes == 1  # the second batch comes within the interval: its work waits
    projector.process_once()
    assert projection.refreshes == 2  # nothing new: the projector is idle, the work waits no longer
    projector.close()
    assert projection.refreshes == 3


def test_a_bounded_run_ends_with_its_deferred_work_done():
    projector = refreshing_projector(refresh_every_ms=3_600_000)
    projector.consumer.batches += [{PARTITION: records(opened().events())}]
    projector.run(max_messages=1)
    assert projector.stats.records == 1 and projector.projections[0].refreshes == 2  # first batch, end of run
    projector.close()


def test_the_event_history_keeps_each_record_s_json_as_published(policy_book):
    """The relay publishes the stored JSON unchanged: the history keeps the record's text, not a dump of the
    parsed event (here a record in other spacing, still a valid event, shows which of the two is kept)."""
    db = ProjectionDatabase(lambda: sqlite3.connect(":memory:", isolation_level=None))
    story = opened()
    story.send(respond(story.id, "2026-03-02T11:00+01:00"))
    published = records(story.events())
    spaced = replace(published[1], value=orjson.dumps(orjson.loads(published[1].value), option=orjson.OPT_INDENT_2))
    with Projector(
        db,
        [ExplanationProjection(db, policy_book)],
        FakeConsumer,
        FakeProducer(),
        topic=TOPIC,
        dlq_topic="d",
        group="g",
    ) as projector:
        projector.consumer.batches.append({PARTITION: [published[0], spaced]})
        projector.process_once()
        kept = db.query("SELECT event FROM sla_event_history ORDER BY version")
    assert [text for (text,) in kept] == [published[0].value.decode(), spaced.value.decode()]
    assert published[0].value.decode() == story.events()[0].model_dump_json()


def test_a_run_sets_aside_what_exists_at_its_start_from_the_collector_s_full_passes(projector):
    gc.unfreeze()
    try:
        projector.run(max_seconds=0)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
