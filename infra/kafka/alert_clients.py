"""The Kafka clients of the alerts consumer, the webhook forwarder and `nettask alerts follow`, built from settings."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from infra.alert_settings import AlertSettings
from infra.kafka.clients import security_config
from infra.kafka.command_clients import FETCH_WAIT_MS, SESSION_TIMEOUT_MS
from infra.settings import Settings

# Only committed alerts are ever read: an aborted transaction's alerts (a crash between produce and commit)
# must never reach on-call.
READ_COMMITTED = "read_committed"
# A transaction left open by a crashed producer whose id is never used again holds back every read_committed
# reader of the alerts topic until it times out (default 60 s).
TRANSACTION_TIMEOUT_MS = 30_000
# How long `follow` waits for the topic's partitions to be known.
PARTITIONS_TIMEOUT_S = 10.0


def event_consumer(settings: Settings, bootstrap: str, alerts: AlertSettings) -> KafkaConsumer:
    """A consumer of the events topic in the alerts group; offsets are committed by the producer's transactions."""
    consumer = KafkaConsumer(
        settings.topics.events,
        bootstrap_servers=bootstrap,
        group_id=alerts.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=READ_COMMITTED,
        fetch_max_wait_ms=FETCH_WAIT_MS,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        **security_config(settings),
    )
    # As for the intake: partitions known before the first join spare a second join (see command_clients).
    consumer.partitions_for_topic(settings.topics.events)
    return consumer


def alert_producer(settings: Settings, bootstrap: str, alerts: AlertSettings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=alerts.transactional_id_for(settings.topics.events),
        transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
        enable_idempotence=True,
        acks="all",
        linger_ms=0,
        **security_config(settings),
    )


def alert_consumer(settings: Settings, bootstrap: str, group: str) -> KafkaConsumer:
    """A consumer of the alerts topic in `group`, committed alerts only, offsets committed by hand."""
    return KafkaConsumer(
        settings.topics.sla_alerts,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=READ_COMMITTED,
        fetch_max_wait_ms=FETCH_WAIT_MS,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        **security_config(settings),
    )


def alert_reader(settings: Settings, bootstrap: str, from_beginning: bool) -> KafkaConsumer:
    """A group-less reader of every partition of the alerts topic, from now or from the beginning."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level=READ_COMMITTED,
        fetch_max_wait_ms=FETCH_WAIT_MS,
        **security_config(settings),
    )
    partitions = _partitions(consumer, settings.topics.sla_alerts)
    consumer.assign(partitions)
    if from_beginning:
        consumer.seek_to_beginning(*partitions)
    else:
        consumer.seek_to_end(*partitions)
    for tp in partitions:  # "now" is when the reader starts, not when it first polls
        consumer.position(tp)
    return consumer


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    deadline = time.monotonic() + PARTITIONS_TIMEOUT_S
    while time.monotonic() < deadline:
        if found := consumer.partitions_for_topic(topic):
            return [TopicPartition(topic, p) for p in sorted(found)]
        time.sleep(0.2)
    consumer.close()
    raise LookupError(f"topic {topic} does not exist (or has no partitions)")
