"""Raw rates of the same run: kafka-python produce and consume, and eventsourcing saves with no domain at all."""

from __future__ import annotations

import orjson
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.measure import Measure, Phase
from infra.settings import Settings
from infra.store import store_env

PROGRESS_EVERY = 1000


def produce(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]], phase: Phase) -> Measure:
    """Send every value and flush; only values the broker acknowledged count."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=65536, enable_idempotence=True
    )
    producer.partitions_for(topic)  # metadata before the clock starts
    phase.start()
    sends = []
    for key, value in values:
        if phase.expired():
            break
        sends.append(producer.send(topic, key=key, value=value))
        if len(sends) % PROGRESS_EVERY == 0:
            phase.advance(PROGRESS_EVERY)
    producer.flush()
    measure = phase.finish(count=sum(1 for send in sends if send.succeeded()), unit=" msg/s")
    producer.close()
    return measure


def consume(bootstrap: str, topic: str, partitions: int, phase: Phase) -> Measure:
    """Read the topic from the start with max_poll_records=2000, decoding each value with orjson."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=2000)
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_beginning(*assigned)
    phase.start()
    while not phase.done():
        batch = consumer.poll(timeout_ms=200)
        phase.advance(sum(_decode(records) for records in batch.values()))
    measure = phase.finish(unit=" msg/s")
    consumer.close()
    return measure


def _decode(records) -> int:
    for record in records:
        orjson.loads(record.value)
    return len(records)


class Probe(Aggregate):
    """The library's own aggregate: one `Created` event with one short field."""

    def __init__(self, note: str):
        self.note = note


class ProbeStore(Application):
    """A bare application with the library's default mapper and JSON transcoder."""

    name = "BenchProbe"


def saves(settings: Settings, per_save: int, phase: Phase) -> Measure:
    """New Probe aggregates saved `per_save` to a transaction (`app.save(*aggregates)`)."""
    app = ProbeStore(env=store_env(settings))
    app.save(Probe("warm-up"))  # tables and connection exist before the clock starts
    phase.start()
    while not phase.done():
        aggregates = [Probe("raw save") for _ in range(min(per_save, phase.expected - phase.count))]
        app.save(*aggregates)
        phase.advance(len(aggregates))
    measure = phase.finish(unit=" aggregates/s")
    app.close()
    return measure
