"""The outbox relay: follows the event store's notification log and publishes each event to `tickets.events`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory, Notification, Tracking, TrackingRecorder
from eventsourcing.utils import Environment, resolve_topic
from kafka import KafkaProducer

from infra.messages import event_headers

log = logging.getLogger(__name__)


@dataclass
class RelayStats:
    published: int = 0
    pages: int = 0
    position: int = 0


@cache
def _event_type(topic: str) -> tuple[str, int]:
    """The public type name and schema version of a stored event topic like 'domain.events:Opened'."""
    event_class = resolve_topic(topic)
    return event_class.__name__, getattr(event_class, "schema_version", 1)


class Relay:
    """Publishes what was stored, in store order; records its position only after the broker acknowledged.

    Why reading the log in order never skips an event: on PostgreSQL, every transaction that inserts events
    takes `LOCK TABLE ... IN EXCLUSIVE MODE` on the events table (eventsourcing's PostgresApplicationRecorder),
    so inserting transactions commit one after another and notification ids become visible in increasing
    order. A reader that has seen id N can therefore never later see a smaller id commit: there are no gaps
    that fill in behind it. SQLite has a single writer at a time, which gives the same guarantee.
    """

    def __init__(
        self,
        app: Application,
        producer: KafkaProducer,
        topic: str,
        name: str,
        page: int,
        idle_ms: int,
        wake: threading.Event | None = None,
    ):
        """`wake`, set by an intake in the same process whenever it stored something, ends an idle wait early."""
        self.app = app  # held: a collected Application closes its connection pool
        self.recorder = app.recorder
        self.producer = producer
        self.topic = topic
        self.name = name
        self.page = page
        self.idle_seconds = idle_ms / 1000
        self.wake = wake or threading.Event()
        self.tracking = _tracking_recorder(app)
        self.stats = RelayStats(position=self.tracking.max_tracking_id(name) or 0)

    def run(self, *, stop: Callable[[], bool] = lambda: False, max_seconds: float | None = None) -> RelayStats:
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        while not stop() and (deadline is None or time.monotonic() < deadline):
            if not self.publish_page():
                self.wake.wait(self.idle_seconds)
                self.wake.clear()
        return self.stats

    def publish_page(self) -> int:
        """Publish one page of the log, in four steps; returns how many events it published.

        1. Read up to `page` notifications after the saved position, in notification-id order.
        2. Send each one's stored JSON unchanged, keyed by ticket id, with type, id and versions in headers.
        3. Flush and check every send: on any failure raise, so the position is NOT saved.
        4. Save the position of the last one. A crash between 3 and 4 publishes the page again after a
           restart: consumers recognise the repeats by event id and stream version.
        """
        notifications = self.recorder.select_notifications(start=self.stats.position + 1, limit=self.page)
        if not notifications:
            return 0
        sends = [self._send(n) for n in notifications]
        self.producer.flush()
        for send in sends:
            send.get(timeout=0)  # raises the broker's error for a send that failed
        self.tracking.insert_tracking(Tracking(self.name, notifications[-1].id))
        self.stats.position = notifications[-1].id
        self.stats.published += len(notifications)
        self.stats.pages += 1
        return len(notifications)

    def _send(self, notification: Notification):
        event_type, schema_version = _event_type(notification.topic)
        stored = orjson.loads(notification.state)
        headers = event_headers(
            event_type, schema_version, stored["event_id"], notification.originator_version, notification.id
        )
        # Ticket events are keyed by ticket id, customer events (PlanSubscribed) by customer id: as documented.
        key = (stored.get("ticket_id") or stored["customer_id"]).encode()
        return self.producer.send(self.topic, key=key, value=notification.state, headers=headers)

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()
        self.app.close()


def _tracking_recorder(app: Application) -> TrackingRecorder:
    """A tracking table in the same database as the events, named after the relay."""
    factory = InfrastructureFactory.construct(Environment(name="Relay", env=dict(app.env)))
    return factory.tracking_recorder()


def relay_producer(bootstrap: str, security: Mapping[str, Any] | None = None) -> KafkaProducer:
    """Idempotent, acks from all in-sync replicas, ordered per partition even with retries.

    `security`: the cluster's security arguments, as infra.kafka.clients.security_config gives them.
    """
    return KafkaProducer(
        **(security or {}),
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=5,
    )
