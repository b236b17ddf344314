"""The engine's own stages, timed: intake (consumed to stored) and relay (stored to acknowledged on the topic)."""

from __future__ import annotations

import cProfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from kafka import KafkaProducer

from bench.measure import Measure, Phase
from bench.workload import Message
from consumers.intake import Intake
from producers.relay import Relay


class WarmUpFailed(RuntimeError):
    """A stage did not get ready within its bound, so its timings would mean nothing."""


def command_producer(bootstrap: str, linger_ms: int = 5) -> KafkaProducer:
    """A producer as another service would have one: idempotent, acks from all in-sync replicas."""
    return KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=linger_ms, batch_size=65536
    )


def publish(producer: KafkaProducer, topic: str, messages: list[Message]) -> None:
    """Publish and wait for every acknowledgement; raises if one failed."""
    sends = [producer.send(topic, key=m.key, value=m.value, headers=m.headers) for m in messages]
    producer.flush()
    for send in sends:
        send.get(timeout=0)


def warm_up_intake(intake: Intake, expected: int, timeout: float) -> None:
    """Apply the first `expected` commands untimed: the group is joined and the consumer positioned."""
    deadline = time.monotonic() + timeout
    handled = 0
    while handled < expected:
        if time.monotonic() >= deadline:
            raise WarmUpFailed(f"intake handled {handled} of {expected} warm-up commands in {timeout:.0f} s")
        handled += intake.process_once()


def run_intake(intake: Intake, phase: Phase, profiler: cProfile.Profile | None) -> Measure:
    """`process_once()` in a loop until every published command is handled (applied, repeat or refused)."""
    phase.start()
    with _profiling(profiler):
        while not phase.done():
            phase.advance(intake.process_once())
    return phase.finish(unit=" commands/s")


def run_relay(relay: Relay, phase: Phase, profiler: cProfile.Profile | None) -> Measure:
    """`publish_page()` in a loop until the relay's position reaches the end of the stored log."""
    relay.connect()  # the producer and the topic's metadata before the clock starts
    phase.start()
    with _profiling(profiler):
        while not phase.done():
            phase.advance(relay.publish_page())
    return phase.finish(unit=" events/s")


def stored_events(intake: Intake) -> int:
    """How many events the store holds: the notification log's last id (the store is fresh)."""
    return intake.desk.recorder.max_notification_id() or 0


@contextmanager
def _profiling(profiler: cProfile.Profile | None) -> Iterator[None]:
    if profiler is None:
        yield
        return
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
