"""The intake's Kafka clients, built from settings: the consumer of `tickets.commands` and the DLQ producer."""

from __future__ import annotations

from collections.abc import Callable

from kafka import KafkaConsumer, KafkaProducer

from infra.kafka import guard
from infra.kafka.clients import security_config
from infra.settings import Settings

# A crashed intake keeps its partitions until its session expires, and no command is applied meanwhile: the
# client's default of 45 s stalled every restart after a kill -9 for that long. Heartbeats come from a background
# thread every 3 s, so a long batch does not end the session; max_poll_interval_ms still guards a wedged loop.
SESSION_TIMEOUT_MS = 10_000
# The broker answers a waiting fetch as soon as a record arrives, so a long wait adds no latency; a short one
# only turns an idle intake into a busy loop of empty fetches.
FETCH_WAIT_MS = 200


def command_consumers(settings: Settings, bootstrap: str, group: str | None = None) -> Callable[[], KafkaConsumer]:
    """Builds a consumer of the commands topic in the intake's group, each time it is called."""
    guard.install(settings.max_batch_bytes)

    def build() -> KafkaConsumer:
        consumer = KafkaConsumer(
            settings.topics.commands,
            bootstrap_servers=bootstrap,
            group_id=group or settings.intake_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.intake_batch,
            fetch_max_wait_ms=FETCH_WAIT_MS,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            # Oversized values must reach validation to be dead-lettered, not stall the fetcher.
            max_partition_fetch_bytes=max(1024 * 1024, settings.max_command_bytes * 4),
            **security_config(settings),
        )
        # The topic's partitions known before the first join: otherwise the first assignment is empty and a
        # second join follows at once, which kafka-python 3.0.12 can abandon when a short poll times out mid-join
        # (the member then holds no partitions, sends no heartbeats and never rejoins: the intake stops).
        consumer.partitions_for_topic(settings.topics.commands)
        return consumer

    return build


def dead_letter_producer(settings: Settings, bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=0, enable_idempotence=True, **security_config(settings)
    )
