"""The projector against the real broker, on SQLite and PostgreSQL: views equal a fold of the store's events."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID

import pytest

from consumers.projector import Projector
from domain import commands as c
from domain.events import TicketEvent
from infra.compose.components import build_intake, build_projector, build_relay
from infra.compose.desk import build_desk
from infra.compose.projections import build_projection_database
from infra.kafka.command_clients import dead_letter_producer
from infra.kafka.event_clients import event_consumers
from infra.messages import DLQ_KIND, DLQ_REASON, MESSAGE_TYPE, header
from infra.settings import Settings
from projections.database import ProjectionDatabase
from projections.sla import queries
from projections.sla.projection import SlaProjection
from projections.sla.view import fold, metric_rows, ticket_row
from tests.integration.helpers import (
    T0,
    RawMessage,
    customer_reply,
    delete_pipeline_topics,
    drain,
    open_ticket,
    pipeline_settings,
    publish,
    publish_raw,
    read_all,
    relay_everything,
    respond,
    subscribe,
    topic_size,
    unique,
)

pytestmark = pytest.mark.kafka
TICKETS = 6
# Bounds of every projector run: it stops at the expected count, or when nothing came for a while.
RUN = {"max_seconds": 90.0, "idle_timeout": 15.0}


@pytest.fixture
def pipeline(store_settings: Settings, kafka_bootstrap: str) -> Iterator[Settings]:
    """The store's settings with random topics and groups; small projector batches, so a run has several."""
    settings = pipeline_settings(store_settings, kafka_bootstrap).model_copy(update={"projector_batch": 7})
    yield settings
    delete_pipeline_topics(kafka_bootstrap, settings)


def stories(customer: str) -> list[c.Command]:
    """Tickets with a first response, some late (breached), some with a customer reply after it."""
    commands: list[c.Command] = []
    for number in range(TICKETS):
        opening = open_ticket(customer, T0 + timedelta(minutes=number))
        commands += [opening, respond(opening.ticket_id, T0 + timedelta(hours=1 + number))]
        if number % 2:
            commands.append(customer_reply(opening.ticket_id, T0 + timedelta(hours=8)))
    return commands


def events_published(settings: Settings, bootstrap: str) -> int:
    """One customer's tickets through intake and relay; returns how many events the events topic holds."""
    customer = unique("cust")
    commands = stories(customer)
    intake = build_intake(settings, bootstrap)
    try:
        publish(bootstrap, settings.topics.commands, [subscribe(customer)])
        drain(intake, until=lambda: intake.stats.applied == 1)
        publish(bootstrap, settings.topics.commands, commands)
        drain(intake, until=lambda: intake.stats.applied == 1 + len(commands))
    finally:
        intake.close()
    relay = build_relay(settings, bootstrap)
    try:
        relay_everything(relay)
    finally:
        relay.close()
    return topic_size(bootstrap, settings.topics.events)


def stored_ticket_events(settings: Settings) -> dict[UUID, list[TicketEvent]]:
    desk = build_desk(settings)
    try:
        by_ticket: dict[UUID, list[TicketEvent]] = {}
        for event in desk.recorded_events():
            if isinstance(event, TicketEvent):
                by_ticket.setdefault(event.ticket_id, []).append(event)
        return by_ticket
    finally:
        desk.close()


def assert_views_equal_a_fold_of_the_store(settings: Settings, tickets: int = TICKETS) -> None:
    """Every ticket's rows equal what folding its stored events gives; its timeline holds each event once."""
    db = build_projection_database(settings)
    try:
        stored = stored_ticket_events(settings)
        assert len(queries.tickets(db)) == len(stored) == tickets
        for ticket_id, events in stored.items():
            view = None
            for event in events:
                view = fold(view, event)
            found = queries.find_ticket(db, str(ticket_id))
            assert found == {k: v for k, v in _fields(ticket_row(view)).items() if k in queries.TICKET_FIELDS}
            expected = [{k: v for k, v in _fields(r).items() if k in queries.METRIC_FIELDS} for r in metric_rows(view)]
            assert sorted(queries.metrics_of(db, str(ticket_id)), key=_metric) == sorted(expected, key=_metric)
            assert [row["version"] for row in queries.timeline(db, str(ticket_id))] == list(range(1, len(events) + 1))
    finally:
        db.close()


def _fields(row) -> dict:
    return {name: getattr(row, name) for name in row.__slots__}


def _metric(row: dict) -> str:
    return row["metric"]


def ticket_events_in(settings: Settings) -> int:
    return sum(len(events) for events in stored_ticket_events(settings).values())


def events_in(settings: Settings) -> int:
    """Every stored event: plans too, which the billing projection reads."""
    desk = build_desk(settings)
    try:
        return sum(1 for _ in desk.recorded_events())
    finally:
        desk.close()


# --- 1. the views equal a fold of the store -----------------------------------------------------------------


def test_the_views_equal_a_fold_of_the_stored_events(pipeline, kafka_bootstrap):
    published = events_published(pipeline, kafka_bootstrap)
    with build_projector(pipeline, kafka_bootstrap) as projector:
        stats = projector.run(max_messages=published, **RUN)

    assert stats.records == published
    assert (stats.applied, stats.repeats, stats.dead_letters) == (events_in(pipeline), 0, 0)
    assert stats.by_projection["sla"].applied == ticket_events_in(pipeline)
    assert stats.batches > 1
    assert_views_equal_a_fold_of_the_store(pipeline)
    db = build_projection_database(pipeline)
    try:
        assert len(queries.breached_now(db, T0 + timedelta(days=1))) > 0  # the late first responses
        assert queries.breach_history(db)
    finally:
        db.close()


# --- 2. repeats ---------------------------------------------------------------------------------------------


def test_every_event_published_twice_is_applied_once(pipeline, kafka_bootstrap):
    published = events_published(pipeline, kafka_bootstrap)
    # As a relay that crashed before saving its position would: the same events, in the same order, again.
    again = [
        RawMessage(r.key, r.value, list(r.headers))
        for r in read_all(kafka_bootstrap, pipeline.topics.events, published)
    ]
    publish_raw(kafka_bootstrap, pipeline.topics.events, sorted(again, key=lambda m: m.key))
    with build_projector(pipeline, kafka_bootstrap) as projector:
        stats = projector.run(max_messages=2 * published, **RUN)

    stored = events_in(pipeline)
    assert (stats.records, stats.applied, stats.repeats) == (2 * published, stored, stored)
    assert_views_equal_a_fold_of_the_store(pipeline)


# --- 3. dead letters ----------------------------------------------------------------------------------------


def test_an_unreadable_event_goes_to_the_dead_letter_topic_and_the_projector_goes_on(pipeline, kafka_bootstrap):
    junk = [
        RawMessage(b"some-ticket", b"{not json", [(MESSAGE_TYPE, b"Opened")]),
        RawMessage(b"some-ticket", b"{}", [(MESSAGE_TYPE, b"TicketTeleported")]),
        RawMessage(b"some-ticket", b'{"ticket_id": 1}', [(MESSAGE_TYPE, b"Responded")]),
    ]
    publish_raw(kafka_bootstrap, pipeline.topics.events, junk)
    published = events_published(pipeline, kafka_bootstrap)
    with build_projector(pipeline, kafka_bootstrap) as projector:
        stats = projector.run(max_messages=published, **RUN)

    assert stats.dead_letters == len(junk)
    letters = read_all(kafka_bootstrap, pipeline.topics.events_dlq, len(junk))
    assert sorted(header(r.headers, DLQ_KIND) for r in letters) == ["invalid-json", "schema", "unknown-type"]
    assert all(header(r.headers, DLQ_REASON) for r in letters)
    assert_views_equal_a_fold_of_the_store(pipeline)


# --- 4. rows and offsets in one transaction -----------------------------------------------------------------


class _CrashingSla(SlaProjection):
    """The SLA projection, failing after its rows of the n-th batch are written but before the commit."""

    def __init__(self, db: ProjectionDatabase, crash_at_batch: int):
        super().__init__(db)
        self.batches_left = crash_at_batch

    def apply(self, cursor, events):
        result = super().apply(cursor, events)
        self.batches_left -= 1
        if self.batches_left == 0:
            raise RuntimeError("the projector dies here, its rows written and not committed")
        return result


def crashing_projector(settings: Settings, bootstrap: str, crash_at_batch: int) -> Projector:
    db = build_projection_database(settings)
    return Projector(
        db, [_CrashingSla(db, crash_at_batch)], event_consumers(settings, bootstrap),
        dead_letter_producer(settings, bootstrap), topic=settings.topics.events,
        dlq_topic=settings.topics.events_dlq, group=settings.projector_group,
    )  # fmt: skip


def test_a_projector_that_dies_mid_batch_leaves_neither_rows_nor_offsets_and_its_successor_misses_nothing(
    pipeline, kafka_bootstrap
):
    published = events_published(pipeline, kafka_bootstrap)
    crashing = crashing_projector(pipeline, kafka_bootstrap, crash_at_batch=3)
    with pytest.raises(RuntimeError, match="dies here"):
        crashing.run(**RUN)
    crashing.close()
    db = build_projection_database(pipeline)
    try:
        kept = sum(len(queries.timeline(db, t["ticket_id"])) for t in queries.tickets(db))
    finally:
        db.close()
    with build_projector(pipeline, kafka_bootstrap) as successor:
        stats = successor.run(max_messages=published - crashing.stats.records, **RUN)

    ticket_events = ticket_events_in(pipeline)
    # The two committed batches' events are in the tables, the third batch's are not: applied again, once.
    assert kept == crashing.stats.applied
    assert crashing.stats.batches == 2
    assert stats.by_projection["sla"].applied + kept == ticket_events
    assert stats.repeats == 0
    assert_views_equal_a_fold_of_the_store(pipeline)


def test_two_projectors_in_one_group_share_the_partitions_and_apply_each_event_once(pipeline, kafka_bootstrap):
    published = events_published(pipeline, kafka_bootstrap)
    projectors = [build_projector(pipeline, kafka_bootstrap) for _ in range(2)]
    done = threading.Event()
    # Applied and skipped count each record once, whichever projector had it; records fetched might not.
    total = lambda: sum(p.stats.applied + p.stats.skipped for p in projectors)  # noqa: E731
    threads = [
        threading.Thread(target=p.run, kwargs={"stop": lambda: done.is_set() or total() >= published, **RUN})
        for p in projectors
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(RUN["max_seconds"] + 30)
    finally:
        done.set()
        for projector in projectors:
            projector.close()

    assert sum(p.stats.applied for p in projectors) == events_in(pipeline)
    assert_views_equal_a_fold_of_the_store(pipeline)
