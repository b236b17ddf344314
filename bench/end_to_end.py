"""End to end: commands published, intake and relay running in threads, events read back from the topic."""

from __future__ import annotations

import threading
import time

import orjson
from kafka import KafkaConsumer, TopicPartition

from bench.measure import Latency, Measure, Phase
from bench.publisher import Wire, publish_elsewhere
from bench.stages import WarmUpFailed
from bench.workload import Message
from infra.compose.components import StopFlag, build_intake, build_relay
from infra.messages import STREAM_VERSION, header
from infra.settings import Settings

# The broker answers a waiting fetch as soon as data arrives, so a long wait adds no latency; a short one only
# makes the watch (and the broker) spin on empty fetches, taking CPU from the pipeline it measures.
WATCH_FETCH_WAIT_MS = 100
# Paced commands still unseen this long after the last one was published count as lost for the latency.
DRAIN_SECONDS = 30.0


class EventWatch:
    """Reads the events topic in a thread of its own and notes when each command's event became readable.

    `on_event(command id, ticket id or None, stream version, readable at)` is told of every event, first time.
    """

    def __init__(self, bootstrap: str, topic: str, partitions: int, on_event=None):
        self.seen: dict[str, float] = {}
        self.on_event = on_event
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=WATCH_FETCH_WAIT_MS,
            max_poll_records=2000,
        )
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        self._consumer.assign(assigned)
        self._consumer.seek_to_beginning(*assigned)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="event-watch", daemon=True)

    def start(self) -> EventWatch:
        self._thread.start()
        return self

    def _read(self) -> None:
        while not self._stop.is_set():
            batch = self._consumer.poll(timeout_ms=50)
            readable_at = time.monotonic()
            for records in batch.values():
                for record in records:
                    self._note(record, readable_at)

    def _note(self, record, readable_at: float) -> None:
        event = orjson.loads(record.value)
        command_id = event["command_id"]
        if command_id in self.seen:
            return
        self.seen[command_id] = readable_at
        if self.on_event is not None:
            version = int(header(record.headers, STREAM_VERSION) or 0)
            self.on_event(command_id, event.get("ticket_id"), version, readable_at)

    def count(self, command_ids: list[str]) -> int:
        return sum(1 for command_id in command_ids if command_id in self.seen)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()


class Pipeline:
    """Intake and relay in threads of this process, as `nettask run` runs them."""

    def __init__(self, settings: Settings, bootstrap: str):
        self.intake = build_intake(settings, bootstrap)
        self.relay = build_relay(settings, bootstrap)
        self.stop_flag = StopFlag()
        self._threads = [
            threading.Thread(target=component.run, kwargs={"stop": self.stop_flag}, name=name, daemon=True)
            for name, component in (("intake", self.intake), ("relay", self.relay))
        ]

    def start(self) -> Pipeline:
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        self.stop_flag.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self.intake.close()
        self.relay.close()


def warm_up(bootstrap: str, topic: str, watch: EventWatch, messages: list[Message], timeout: float) -> None:
    """Publish the subscriptions and wait for their events: group joined, relay and watch reading."""
    publish_elsewhere(bootstrap, topic, _wire(messages), None, timeout)
    ids = [m.command_id for m in messages]
    if not _wait_seen(watch, ids, time.monotonic() + timeout):
        raise WarmUpFailed(f"{watch.count(ids)} of {len(ids)} warm-up events seen in {timeout:.0f} s")


def burst(bootstrap: str, topic: str, watch: EventWatch, messages: list[Message], phase: Phase) -> Measure:
    """Publish everything at once; throughput is commands over the time from the first send to the last event."""
    ids = [m.command_id for m in messages]
    phase.start()
    sent_at = publish_elsewhere(bootstrap, topic, _wire(messages), None, phase.timeout)
    while not phase.done():
        time.sleep(0.05)
        phase.advance(watch.count(ids) - phase.count)
    seen = [watch.seen[i] for i in ids if i in watch.seen]
    last = max(seen) if len(seen) == len(ids) else time.monotonic()
    return phase.finish(count=len(seen), seconds=last - min(sent_at.values()), unit=" commands/s")


def paced(bootstrap: str, topic: str, watch: EventWatch, messages: list[Message], rate: float, phase: Phase) -> Latency:
    """Publish at `rate` commands/s; each latency runs from the send call to the event being readable."""
    sent_at = publish_elsewhere(bootstrap, topic, _wire(messages), rate, phase.timeout)
    deadline = time.monotonic() + DRAIN_SECONDS
    ids = list(sent_at)
    while not _wait_seen(watch, ids, min(deadline, time.monotonic() + 0.25)) and time.monotonic() < deadline:
        phase.advance(watch.count(ids) - phase.count)
    in_order = [watch.seen[i] - t for i, t in sent_at.items() if i in watch.seen]
    phase.finish(count=len(in_order), unit=" events seen/s")
    tenth = max(1, len(in_order) // 10)
    return Latency(tuple(sorted(in_order)), len(messages), rate, _median(in_order[:tenth]), _median(in_order[-tenth:]))


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else float("nan")


def _wire(messages: list[Message]) -> list[Wire]:
    return [(m.key, m.value, m.headers, m.command_id) for m in messages]


def _wait_seen(watch: EventWatch, ids: list[str], deadline: float) -> bool:
    while watch.count(ids) < len(ids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
