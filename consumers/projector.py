"""The projector: events from `tickets.events` into every projection, with the offsets, in one transaction."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kafka import ConsumerRebalanceListener, TopicPartition
from pydantic import ValidationError

from consumers.dead_letters import DeadLetters
from consumers.idle_watch import IdleWatch
from consumers.records import DeadLetter, Record
from domain import events as ev
from domain.validation import validation_problems
from infra.kafka.guard import UnreadableRecord
from infra.messages import MESSAGE_TYPE, NOTIFICATION_ID, header
from projections.database import ProjectionDatabase

log = logging.getLogger(__name__)
# The database is down or locked: read the same batch again after this pause rather than dead-letter it.
STORE_RETRY_SECONDS = 1.0
# Deferred work (billing's statements) is done at least this often while batches keep coming, unless told otherwise.
REFRESH_EVERY_MS = 500
# Every event the store records, by the name the relay puts in the message-type header: tickets, plans, closings.
DOMAIN_EVENTS = {t.__name__: t for t in (*ev.TICKET_EVENTS, ev.PlanSubscribed, ev.MonthClosed)}


class Projection(Protocol):
    """What the projector needs of a projection: its tables, the events it reads, and a batch of them applied
    inside a cursor."""

    name: str
    # The projection receives the events that are instances of these types, in topic order; others never.
    event_types: tuple[type[ev.DomainEvent], ...]
    # A projection with a true `reads_stored_json` attribute (optional) is also given `stored_json`: each event's
    # JSON by event id, as the record carried it (the store's own JSON, which the relay forwards unchanged).

    def create_tables(self, cursor: Any) -> None: ...

    def apply(self, cursor: Any, events: Sequence[ev.DomainEvent]) -> Any:
        """Returns an object with `applied`, `repeats` and `failures` (each with `event`, `kind`, `reason`)."""


class Refreshing(Protocol):
    """A projection that defers part of its work past the batches (billing's statements): `refresh` does what
    the batches left, in a transaction of its own, and returns how much."""

    def refresh(self) -> int: ...


@dataclass
class Counts:
    applied: int = 0
    repeats: int = 0


@dataclass
class ProjectorStats:
    """Per record: `applied` when some projection took it, `repeats` when the projections had it already,
    `skipped` when no projection reads its type. `by_projection` counts what each projection reported."""

    records: int = 0
    applied: int = 0
    repeats: int = 0
    skipped: int = 0
    dead_letters: int = 0
    batches: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    by_projection: dict[str, Counts] = field(default_factory=dict)

    def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        self.dead_letters += len(letters)
        for letter in letters:
            self.by_kind[letter.kind] = self.by_kind.get(letter.kind, 0) + 1


ConsumerFactory = Callable[[ConsumerRebalanceListener], Any]


class _Assignments(ConsumerRebalanceListener):
    """Notes newly assigned partitions; the projector moves them to their stored offsets on its own thread.

    kafka-python may call a listener from its network thread, so the listener only records; the seek and
    the database read happen in the projector's loop, right after the poll that saw the assignment.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._new: set[TopicPartition] = set()

    def on_partitions_revoked(self, revoked) -> None:
        with self._lock:
            self._new -= set(revoked)

    def on_partitions_assigned(self, assigned) -> None:
        with self._lock:
            self._new |= set(assigned)

    def take(self) -> set[TopicPartition]:
        with self._lock:
            new, self._new = self._new, set()
        return new

    def put_back(self, partitions: set[TopicPartition]) -> None:
        with self._lock:
            self._new |= partitions


class Projector:
    """Applies poll batches of events to the projections; the database, not Kafka, keeps its offsets.

    It receives its Kafka clients: `consumers` builds a KafkaConsumer subscribed to the events topic with the
    given rebalance listener, `dlq` is the producer for events that cannot be applied.
    """

    def __init__(
        self,
        db: ProjectionDatabase,
        projections: Sequence[Projection],
        consumers: ConsumerFactory,
        dlq: Any,
        *,
        topic: str,
        dlq_topic: str,
        group: str,
        refresh_every_ms: int = REFRESH_EVERY_MS,
    ):
        self.db = db
        self.projections = list(projections)
        self.topic = topic
        self.group = group
        self.dead_letters = DeadLetters(dlq, dlq_topic)
        self.stats = ProjectorStats()
        self._create_tables()
        self.assignments = _Assignments()
        self.consumers = consumers
        self.consumer = consumers(self.assignments)
        self.idle = IdleWatch()
        self.refreshing: list[Refreshing] = [p for p in self.projections if callable(getattr(p, "refresh", None))]
        self.refresh_every_s = refresh_every_ms / 1000
        # Due at once: marks a crash left before its refresh are done on the first poll.
        self._refreshed_at = float("-inf")

    def __enter__(self) -> Projector:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def run(
        self,
        *,
        stop: Callable[[], bool] = lambda: False,
        max_seconds: float | None = None,
        max_messages: int | None = None,
        idle_timeout: float | None = None,
    ) -> ProjectorStats:
        """Apply batches until `stop()`, `max_seconds` pass, `max_messages` records were handled, or none came
        for `idle_timeout` seconds."""
        _set_aside_what_lives_on()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        idle_since = time.monotonic()
        while not stop() and (deadline is None or time.monotonic() < deadline):
            if max_messages is not None and self.stats.records >= max_messages:
                break
            if self.process_once(timeout_ms=200):
                idle_since = time.monotonic()
            elif idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                break
            if self.idle.stuck(bool(self.consumer.assignment())):
                self._rejoin()
        self.refresh()  # a bounded run ends with complete statements: its caller may read them next
        return self.stats

    def _rejoin(self) -> None:
        """Leave the group and join again with a new consumer; the database keeps the offsets, nothing is lost."""
        log.warning("the projector held no partition for %.0f s: rejoining the group with a new consumer",
                    self.idle.after)  # fmt: skip
        self.consumer.close()
        self.assignments.take()  # partitions of the old member: the new one is told its own
        self.consumer = self.consumers(self.assignments)

    def process_once(self, timeout_ms: int = 200) -> int:
        """One poll batch, in seven steps; returns how many records it handled.

        1. Poll a batch. Partitions assigned since the last poll are first moved to the offsets the database
           holds for them (none: the beginning), and whatever this poll fetched for them is dropped.
        2. Parse every record into a domain event; a record that is none becomes a dead letter. Order the
           batch by store position (the notification-id header): each partition's order is kept, and events
           of different partitions reach the projections in the order they were recorded.
        3. Begin ONE database transaction and read the stored offsets of the batch's partitions; records
           below them were applied already (by this projector before a failure, or another one before a
           rebalance) and are dropped.
        4. Apply to every projection the events of the types it reads; an event a projection cannot take
           becomes a dead letter; one that no projection reads is skipped. A projection ignores an event it
           already holds (the relay may repeat one).
        5. Publish the dead letters and wait until the broker has them; if that fails, nothing commits.
        6. Write the next offset of each of the batch's partitions and commit: rows and offsets together. A
           crash before the commit leaves neither, and the batch is read again from the stored offsets.
        7. When the poll found nothing, or the refresh interval has passed, do the projections' deferred work
           (billing's statements), each in a transaction of its own: what it left is marked in the database.
        """
        batch = self._poll(timeout_ms)
        records = [record for partition in batch.values() for record in partition]
        if not records:
            self.refresh()  # idle: nothing to coalesce with, so deferred work waits no longer
            return 0
        try:
            self._apply(records)
        except self.db.errors as error:
            self._retry_later(batch, error)
            return 0
        self.stats.records += len(records)
        self.stats.batches += 1
        if time.monotonic() - self._refreshed_at >= self.refresh_every_s:
            self.refresh()
        return len(records)

    def refresh(self) -> None:
        """The projections' deferred work, each in a transaction of its own after the batches' commits; a
        failure leaves it marked in the database for the next refresh."""
        self._refreshed_at = time.monotonic()
        for projection in self.refreshing:
            try:
                projection.refresh()
            except self.db.errors as error:
                log.error("projection database unavailable, deferred work left for the next refresh: %s", error)

    def _apply(self, records: list[Any]) -> None:
        parsed = [(record, _parse(record)) for record in records]
        with self.db.transaction() as cursor:
            stored = self.db.stored_offsets(cursor, self.group, self.topic)
            fresh = [(r, p) for r, p in parsed if r.offset >= stored.get(r.partition, 0)]
            letters = [p for _, p in fresh if isinstance(p, DeadLetter)]
            events = _in_store_order([(r, p) for r, p in fresh if isinstance(p, ev.DomainEvent)])
            letters += self._apply_to_projections(cursor, events)
            self.dead_letters.send(letters)
            self.db.save_offsets(cursor, self.group, _next_offsets(records, stored))
        self.stats.dead_lettered(letters)

    def _apply_to_projections(self, cursor: Any, events: list[tuple[Any, ev.DomainEvent]]) -> list[DeadLetter]:
        record_of = {event.event_id: record for record, event in events}
        letters: dict[tuple[Any, str], DeadLetter] = {}
        read = [e for _, e in events if any(isinstance(e, p.event_types) for p in self.projections)]
        repeats = 0
        for projection in self.projections:
            taken = [e for e in read if isinstance(e, projection.event_types)]
            if getattr(projection, "reads_stored_json", False):
                stored_json = {e.event_id: record_of[e.event_id].value for e in taken}
                result = projection.apply(cursor, taken, stored_json=stored_json)
            else:
                result = projection.apply(cursor, taken)
            self._count(projection.name, result)
            # A repeat from the relay is a repeat for every projection reading it: the widest count holds.
            repeats = max(repeats, result.repeats)
            for failure in result.failures:
                record = record_of[failure.event.event_id]
                reason = f"{projection.name}: {failure.reason}"
                letters.setdefault((record.partition, record.offset), DeadLetter(record, failure.kind, reason))
        self.stats.skipped += len(events) - len(read)
        self.stats.applied += len(read) - repeats
        self.stats.repeats += repeats
        return list(letters.values())

    def _count(self, name: str, result: Any) -> None:
        counts = self.stats.by_projection.setdefault(name, Counts())
        counts.applied += result.applied
        counts.repeats += result.repeats

    def _poll(self, timeout_ms: int) -> dict:
        try:
            batch = self.consumer.poll(timeout_ms=timeout_ms)
        except UnreadableRecord as unreadable:
            self._skip(unreadable)
            return {}
        moved = self._seek_new_partitions()
        return {tp: records for tp, records in batch.items() if tp not in moved}

    def _seek_new_partitions(self) -> set[TopicPartition]:
        new = self.assignments.take() & self.consumer.assignment()
        if not new:
            return set()
        try:
            with self.db.transaction() as cursor:
                stored = self.db.stored_offsets(cursor, self.group, self.topic)
        except self.db.errors as error:
            # Their records are dropped and they are moved on the next poll; meanwhile step 3 guards anyway.
            log.error("projection database unavailable, offsets of new partitions not read: %s", error)
            self.assignments.put_back(new)
            return new
        for tp in new:
            self.consumer.seek(tp, stored.get(tp.partition, 0))
        return new

    def _skip(self, unreadable: UnreadableRecord) -> None:
        """Dead-letter what is known of a record kafka-python cannot unpack, and go on after it."""
        tp, offset = unreadable.partition, unreadable.offset
        letter = DeadLetter(Record(tp.topic, tp.partition, offset, None, None), unreadable.kind, unreadable.reason)
        with self.db.transaction() as cursor:
            self.dead_letters.send([letter])
            self.db.save_offsets(cursor, self.group, {(tp.topic, tp.partition): offset + 1})
        self.stats.dead_lettered([letter])
        self.consumer.seek(tp, offset + 1)

    def _retry_later(self, batch: dict, error: Exception) -> None:
        """Rewind to the batch's first offsets: nothing of it was committed, so nothing is lost."""
        log.error("projection database unavailable, retrying in %.1f s: %s", STORE_RETRY_SECONDS, error)
        for partition, records in batch.items():
            self.consumer.seek(partition, records[0].offset)
        time.sleep(STORE_RETRY_SECONDS)

    def _create_tables(self) -> None:
        self.db.create_schema()
        with self.db.transaction() as cursor:
            for projection in self.projections:
                projection.create_tables(cursor)

    def close(self) -> None:
        self.refresh()
        self.dead_letters.close()
        self.consumer.close()
        self.db.close()


def _set_aside_what_lives_on() -> None:
    """Leave what exists when the loop starts (modules, pydantic's schemas, the policy) out of the collector's full
    passes: it lives as long as the process, yet every full pass walked it again, a fifth of a batch's time."""
    gc.collect()  # garbage now would otherwise be set aside with the rest and never freed
    gc.freeze()


def _parse(record: Any) -> ev.DomainEvent | DeadLetter:
    """The domain event a record carries, or a dead letter saying why it carries none."""
    event_type = header(record.headers, MESSAGE_TYPE)
    if event_type not in DOMAIN_EVENTS:
        return DeadLetter(record, "unknown-type", f"message-type {event_type!r} is no event the store records")
    if not record.value:
        return DeadLetter(record, "empty", "the message has no value")
    try:
        return DOMAIN_EVENTS[event_type].model_validate_json(record.value)
    except ValidationError as error:
        kind = "invalid-json" if error.errors()[0]["type"] == "json_invalid" else "schema"
        return DeadLetter(record, kind, f"not a valid {event_type}: {validation_problems(error, first_only=True)}")


def _in_store_order(events: list[tuple[Any, ev.DomainEvent]]) -> list[tuple[Any, ev.DomainEvent]]:
    """By notification id when every record has one (the relay's always do); else as the topic gave them."""
    positions = [header(record.headers, NOTIFICATION_ID) for record, _ in events]
    if not all(position and position.isdigit() for position in positions):
        return events
    order = sorted(range(len(events)), key=lambda i: int(positions[i]))
    return [events[i] for i in order]


def _next_offsets(records: list[Any], stored: dict[int, int]) -> dict[tuple[str, int], int]:
    """After each partition's last record; never behind what is stored (a batch may hold only repeats)."""
    offsets: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        offsets[key] = max(offsets.get(key, 0), record.offset + 1, stored.get(record.partition, 0))
    return offsets
