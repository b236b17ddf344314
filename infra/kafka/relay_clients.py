"""The relay's Kafka producer, built from settings: idempotent, every page acknowledged by all in-sync replicas."""

from __future__ import annotations

from collections.abc import Callable

from kafka import KafkaProducer

from infra.kafka.clients import security_config
from infra.kafka.partitioner import KeyHashPartitioner
from infra.settings import Settings

# How long the producer keeps retrying a record inside the client before the send fails (default 120 s): a broker
# that is away longer is reported by the relay's own retries, one log line each, instead of by a long silence.
REQUEST_TIMEOUT_MS = 5_000
DELIVERY_TIMEOUT_MS = 10_000
# A new producer that finds no broker gives up after this (the client waits 30 s by default).
BOOTSTRAP_TIMEOUT_MS = 8_000
# send() blocks for the topic's metadata at most this long (default 60 s).
MAX_BLOCK_MS = 10_000
# The relay flushes at the end of every page, which sends whatever waits at once, so lingering adds no latency.
# A short linger only woke the client's sender thread mid-page to ship small batches, taking the GIL from the
# relay's own thread while it was still sending the page.
LINGER_MS = 100
# A page of 1,000 stored events (about 500 bytes each) on one partition fits in two batches.
BATCH_BYTES = 256 * 1024


def relay_producers(settings: Settings, bootstrap: str) -> Callable[[], KafkaProducer]:
    """Builds the relay's producer each time it is called: first, and again after a send failed."""

    def build() -> KafkaProducer:
        return KafkaProducer(
            **security_config(settings),
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=LINGER_MS,
            batch_size=BATCH_BYTES,
            max_in_flight_requests_per_connection=5,
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            max_block_ms=MAX_BLOCK_MS,
            partitioner=KeyHashPartitioner(),
        )

    return build
