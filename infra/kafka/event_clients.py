"""The projector's Kafka consumer, built from settings: the events topic in the projector's group."""

from __future__ import annotations

from collections.abc import Callable

from kafka import ConsumerRebalanceListener, KafkaConsumer

from infra.kafka.clients import security_config
from infra.kafka.command_clients import FETCH_WAIT_MS, SESSION_TIMEOUT_MS
from infra.settings import Settings


def event_consumers(
    settings: Settings, bootstrap: str, group: str | None = None
) -> Callable[[ConsumerRebalanceListener], KafkaConsumer]:
    """Builds a consumer subscribed to the events topic with the given rebalance listener, each time it is called.

    No offsets are committed to Kafka: the projector keeps them in its database, with the rows they produced.
    """

    def build(listener: ConsumerRebalanceListener) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group or settings.projector_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.projector_batch,
            fetch_max_wait_ms=FETCH_WAIT_MS,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            **security_config(settings),
        )
        # The topic's partitions known before the first join (see command_clients: a first empty assignment
        # and an abandoned second join leave a member with no partitions).
        consumer.partitions_for_topic(settings.topics.events)
        consumer.subscribe([settings.topics.events], listener=listener)
        return consumer

    return build
