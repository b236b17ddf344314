"""Helpers for the pipeline tests: random topics and groups, command builders, publish, read back and drain."""

from __future__ import annotations

import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import orjson
from eventsourcing.persistence import Notification
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.serializer import Serializer

from consumers.intake import Intake, IntakeStats
from domain import commands as c
from domain import events
from domain.desk import TicketDesk
from infra.compose.desk import build_desk
from infra.kafka import topics
from infra.messages import MESSAGE_ID, MESSAGE_TYPE, STREAM_VERSION, command_headers, command_value, header
from infra.settings import Settings, TopicSettings
from producers.client import CommandPublisher
from producers.relay import Relay

# A Monday in business hours (Berlin winter time): first-response clocks run from the opening on.
T0 = datetime.fromisoformat("2026-03-02T10:00:00+01:00")
# Customers subscribe long before any ticket, so their plan is in force at every opening.
SUBSCRIBED_FROM = T0 - timedelta(days=60)
ACTOR = "agent.test"

Headers = list[tuple[str, bytes]]
PARK_SECONDS = 1.0


# --- settings: random topics (created on the broker), groups and relay name per test ---------------------


def pipeline_settings(
    base_settings: Settings, bootstrap: str, partitions: int = 3, security: dict | None = None
) -> Settings:
    """`base_settings` (its store) with random topics created on the broker, and a random group and relay name."""
    suffix = uuid.uuid4().hex[:12]
    prefix = f"test.{suffix}"
    topic_settings = TopicSettings(
        commands=f"{prefix}.commands", commands_dlq=f"{prefix}.commands.dlq", events=f"{prefix}.events",
        events_dlq=f"{prefix}.events.dlq", sla_alerts=f"{prefix}.sla-alerts", partitions=partitions,
        replication_factor=1,
    )  # fmt: skip
    topics.ensure_topics(bootstrap, topic_settings, progress=lambda _line: None, security=security)
    return base_settings.model_copy(
        update={
            "topics": topic_settings,
            "intake_group": f"test-intake-{suffix}",
            "relay_name": f"test-relay-{suffix}",
            "projector_group": f"test-projector-{suffix}",
            "kafka_bootstrap_servers": bootstrap,
            # A command for a ticket never opened is refused after a second, not after the default minutes.
            "park_max_seconds": PARK_SECONDS,
        }
    )


def delete_pipeline_topics(bootstrap: str, settings: Settings) -> None:
    for name in topics.topic_specs(settings.topics):
        topics.delete_topic(bootstrap, name)


# --- command builders: a uuid4 command id each, explicit instants ----------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex[:12]}"


def subscribe(customer_id: str, plan: str = "standard") -> c.SubscribePlan:
    return c.SubscribePlan(
        command_id=uuid4(), occurred_at=SUBSCRIBED_FROM, actor="crm", customer_id=customer_id, plan=plan,
        effective_from=SUBSCRIBED_FROM,
    )  # fmt: skip


def open_ticket(
    customer_id: str, at: datetime = T0, *, department: str = "trouble", subject: str = "The web shop answers 503"
) -> c.OpenTicket:
    return c.OpenTicket(
        command_id=uuid4(), occurred_at=at, actor="portal", source="portal", reference=unique("REF"),
        customer_id=customer_id, department=department, severity="C", language="en", subject=subject,
    )  # fmt: skip


def respond(ticket_id: UUID, at: datetime) -> c.RecordResponse:
    return c.RecordResponse(command_id=uuid4(), occurred_at=at, actor=ACTOR, ticket_id=ticket_id)


def customer_reply(ticket_id: UUID, at: datetime) -> c.RecordCustomerReply:
    return c.RecordCustomerReply(command_id=uuid4(), occurred_at=at, actor="customer", ticket_id=ticket_id)


# --- Kafka: publish, read back, count -------------------------------------------------------------------


@dataclass(frozen=True)
class RawMessage:
    """A message exactly as it goes on the wire, for messages no command model could produce."""

    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)


def as_message(command: c.Command) -> RawMessage:
    """A command as CommandPublisher sends it (key = ticket or customer id, envelope headers), to mix with junk."""
    return RawMessage(command.key.encode(), command_value(command), command_headers(command))


def publish(bootstrap: str, topic: str, commands: Iterable[c.Command]) -> None:
    """Publish commands in order through the project's client; returns once the broker has every one."""
    with CommandPublisher(bootstrap, topic, linger_ms=1) as publisher:
        sends = publisher.publish_all(commands)
        publisher.flush(timeout=60)
        for send in sends:
            send.get(timeout=30)


def publish_raw(bootstrap: str, topic: str, messages: Iterable[RawMessage]) -> None:
    """Publish messages in order and wait for every acknowledgement (raises the first failed send's error)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1, key_serializer=_NullableKey())
    try:
        sends = [producer.send(topic, key=_nullable(m.key), value=m.value, headers=list(m.headers)) for m in messages]
        producer.flush(timeout=60)
        for send in sends:
            send.get(timeout=30)
    finally:
        producer.close(timeout=10)


# kafka-python refuses a record with neither key nor value, which other clients send (a tombstone without a
# key): a key that serializes to None gets one past that check, so the intake meets it here too.
_NULL_KEY = object()


class _NullableKey(Serializer):
    def serialize(self, topic, headers, data):
        return None if data is _NULL_KEY else data


def _nullable(key: bytes | None) -> object:
    return _NULL_KEY if key is None else key


def read_all(bootstrap: str, topic: str, expected_count: int, timeout_s: float = 30.0) -> list[ConsumerRecord]:
    """Every record of `topic` from the beginning, read by a fresh group-less consumer, in partition order.

    Stops when `expected_count` records arrived or `timeout_s` passed, whichever is first.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )  # fmt: skip
    try:
        consumer.assign(_partitions(consumer, topic, timeout_s))
        consumer.seek_to_beginning()
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < expected_count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def topic_size(bootstrap: str, topic: str) -> int:
    """How many records `topic` holds: the sum of its partitions' end offsets (nothing is ever deleted here)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        return sum(consumer.end_offsets(_partitions(consumer, topic, 30.0)).values())
    finally:
        consumer.close()


def _partitions(consumer: KafkaConsumer, topic: str, timeout_s: float) -> list[TopicPartition]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return [TopicPartition(topic, p) for p in sorted(partitions)]
        time.sleep(0.1)
    raise AssertionError(f"topic {topic} has no partitions after {timeout_s} s")


def event_of(record: ConsumerRecord) -> events.DomainEvent:
    """The domain event a record of the events topic carries, rebuilt from its JSON by its message type."""
    event_type = getattr(events, header(record.headers, MESSAGE_TYPE) or "")
    return event_type.model_validate_json(record.value)


# --- running the components in bounded loops --------------------------------------------------------------


def wait_until(condition: Callable[[], bool], seconds: float, every: float = 0.2) -> bool:
    """Whether `condition()` came true within `seconds`, looked at every `every` seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def drain(intake: Intake, until: Callable[[], bool], max_seconds: float = 60.0, max_polls: int = 10_000) -> IntakeStats:
    """Call `intake.process_once()` until `until()` holds; fails after `max_seconds` or `max_polls` polls."""
    deadline = time.monotonic() + max_seconds
    for _ in range(max_polls):
        if until() or time.monotonic() > deadline:
            break
        intake.process_once(timeout_ms=100)
        intake.release_waiting()
    assert until(), f"the intake did not get there within {max_seconds} s: {intake.stats}"
    return intake.stats


def handled(intake: Intake) -> int:
    """Commands the intake has decided on, whatever the outcome (dead letters included)."""
    stats = intake.stats
    return stats.applied + stats.unchanged + stats.refused + stats.invalid


def relay_everything(relay: Relay, max_pages: int = 1_000) -> int:
    """Publish pages until the log has no more; returns how many events were published."""
    published = 0
    for _ in range(max_pages):
        count = relay.publish_page()
        if not count:
            return published
        published += count
    raise AssertionError(f"the relay still had events after {max_pages} pages")


def stored_log(settings: Settings, desk: TicketDesk | None = None, page: int = 1_000) -> list[Notification]:
    """The store's whole notification log, in order, read through `desk` or a desk of its own."""
    own = desk is None
    desk = desk or build_desk(settings)
    try:
        log: list[Notification] = []
        for _ in range(1_000):
            notifications = desk.recorder.select_notifications(start=(log[-1].id + 1) if log else 1, limit=page)
            log.extend(notifications)
            if len(notifications) < page:
                return log
        raise AssertionError(f"the log is longer than {page * 1_000} notifications")
    finally:
        if own:
            desk.close()


def component_env(settings: Settings, bootstrap: str, var_dir: Path) -> dict[str, str]:
    """The environment that points `nettask` at the test's broker, topics, groups and store."""
    topics = settings.topics
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "NETTASK_STORE": settings.store,
        "NETTASK_VAR_DIR": str(var_dir),
        "NETTASK_SQLITE_PATH": str(settings.sqlite_file()),
        "NETTASK_POSTGRES_SCHEMA": settings.postgres_schema,
        "NETTASK_TOPIC_COMMANDS": topics.commands,
        "NETTASK_TOPIC_COMMANDS_DLQ": topics.commands_dlq,
        "NETTASK_TOPIC_EVENTS": topics.events,
        "NETTASK_TOPIC_EVENTS_DLQ": topics.events_dlq,
        "NETTASK_TOPIC_SLA_ALERTS": topics.sla_alerts,
        "NETTASK_TOPIC_PARTITIONS": str(topics.partitions),
        "NETTASK_INTAKE_GROUP": settings.intake_group,
        "NETTASK_RELAY_NAME": settings.relay_name,
        "NETTASK_PROJECTOR_GROUP": settings.projector_group,
        "NETTASK_PARK_MAX_SECONDS": str(settings.park_max_seconds),
        # The alerts component's group and transactional id, the test's own like the intake's group.
        "NETTASK_ALERTS_GROUP": f"{settings.intake_group}-alerts",
        "NETTASK_ALERTS_TRANSACTIONAL_ID": f"{settings.intake_group}-alerts",
    }


# --- what the relay must leave on the events topic ---------------------------------------------------------


def event_id_of(state: bytes) -> str:
    return orjson.loads(state)["event_id"]


def assert_published_in_order(settings: Settings, bootstrap: str) -> int:
    """Store ⊆ topic; per stream, repeats dropped, versions 1..n in topic order. Returns the repeats."""
    stored_ids = {event_id_of(n.state) for n in stored_log(settings)}
    records = read_all(bootstrap, settings.topics.events, topic_size(bootstrap, settings.topics.events), 60)
    assert stored_ids <= {header(r.headers, MESSAGE_ID) for r in records}
    by_stream: dict[bytes, list[int]] = defaultdict(list)
    partitions: dict[bytes, set[int]] = defaultdict(set)
    event_at: dict[tuple[bytes, int], str] = {}
    for record in records:  # in offset order within each partition
        version, event_id = int(header(record.headers, STREAM_VERSION)), header(record.headers, MESSAGE_ID)
        partitions[record.key].add(record.partition)
        # A repeat is the same event again, never another event at the same version.
        assert event_at.setdefault((record.key, version), event_id) == event_id
        if version not in by_stream[record.key]:
            by_stream[record.key].append(version)
    for key, versions in by_stream.items():
        assert versions == list(range(1, len(versions) + 1)), key
        assert len(partitions[key]) == 1, key
    return len(records) - len({header(r.headers, MESSAGE_ID) for r in records})
