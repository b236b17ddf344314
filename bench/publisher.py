"""Publishes commands from a process of its own, as another service would, and reports when it sent each one.

In the pipeline's own process a publisher would take the GIL from the intake and relay threads it measures.
Its times are `time.monotonic()`, the system-wide CLOCK_MONOTONIC on Linux, so they compare across processes.
"""

from __future__ import annotations

import multiprocessing
import time
from functools import partial

from kafka import KafkaProducer

# (key, value, headers, command id): what a spawned process can receive.
Wire = tuple[bytes, bytes, list[tuple[str, bytes]], str]


def publish_elsewhere(bootstrap: str, topic: str, messages: list[Wire], rate: float | None, max_seconds: float):
    """Publish in a spawned process, at `rate` per second or all at once; returns {command id: send time}."""
    return publish_timed(bootstrap, topic, messages, rate, max_seconds)[0]


def publish_timed(
    bootstrap: str, topic: str, messages: list[Wire], rate: float | None, max_seconds: float
) -> tuple[dict[str, float], dict[str, float]]:
    """As publish_elsewhere, and when the broker acknowledged each: ({command id: sent}, {command id: acked})."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_publish, (bootstrap, topic, messages, rate, max_seconds))


def _publish(bootstrap: str, topic: str, messages: list[Wire], rate: float | None, max_seconds: float):
    # linger_ms=0: the publisher adds no batching window of its own to the measured latency.
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=0)
    producer.partitions_for(topic)  # metadata before the first timed send
    sent_at: dict[str, float] = {}
    acked_at: dict[str, float] = {}
    start = time.monotonic()
    for n, (key, value, headers, command_id) in enumerate(messages):
        due = start + n / rate if rate else start
        if due - start > max_seconds:
            break
        if (delay := due - time.monotonic()) > 0:
            time.sleep(delay)
        sent_at[command_id] = time.monotonic()
        send = producer.send(topic, key=key, value=value, headers=headers)
        # Called on the producer's I/O thread when the broker's acknowledgement arrives.
        send.add_callback(partial(_acked, acked_at, command_id))
    producer.flush()
    producer.close()
    return sent_at, acked_at


def _acked(acked_at: dict[str, float], command_id: str, _metadata) -> None:
    acked_at[command_id] = time.monotonic()
