"""The outbox relay: follows the event store's notification log and publishes each event to `tickets.events`."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory, Notification, Tracking, TrackingRecorder
from eventsourcing.utils import Environment, resolve_topic
from kafka import KafkaProducer
from kafka.errors import KafkaError

from infra.messages import event_headers
from infra.retry import Interrupted, RetryPolicy, retry
from infra.store import STORE_OUTAGES, without_library_retries

T = TypeVar("T")
log = logging.getLogger(__name__)
# How long the producer keeps retrying a record inside the client before the send fails (default 120 s): a broker
# that is away longer is reported by the relay's own retries, one log line each, instead of by a long silence.
REQUEST_TIMEOUT_MS = 5_000
DELIVERY_TIMEOUT_MS = 10_000
# A new producer that finds no broker gives up after this (the client waits 30 s by default).
BOOTSTRAP_TIMEOUT_MS = 8_000
# send() blocks for the topic's metadata at most this long (default 60 s).
MAX_BLOCK_MS = 10_000
# flush() should end by the delivery timeout; this bounds it should the client ever hang.
FLUSH_TIMEOUT_S = DELIVERY_TIMEOUT_MS / 1000 + 5
# Told after each page the broker acknowledged: (read at, acknowledged at, the page's notifications),
# time.monotonic() instants. How a benchmark splits the latency; a relay without one pays nothing.
PageObserver = Callable[[float, float, list[Notification]], None]


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
        new_producer: Callable[[], KafkaProducer],
        topic: str,
        name: str,
        page: int,
        idle_ms: int,
        wake: threading.Event | None = None,
        *,
        on_page: PageObserver | None = None,
        retry_policy: RetryPolicy | None = None,
        store_label: str = "the event store",
        broker_label: str = "Kafka",
    ):
        """`new_producer` makes a producer now and again after a failed send (the old one may be wedged).

        `wake`, set by an intake in the same process whenever it stored something, ends an idle wait early.
        The labels name the store and the broker (host and port) in log lines and errors.
        """
        self.app = app  # held: a collected Application closes its connection pool
        # The relay's own retries report every failed attempt; the library's would hide the first ten.
        self._select_notifications = without_library_retries(app.recorder.select_notifications)
        self.new_producer = new_producer
        self.producer: KafkaProducer | None = None
        self.topic = topic
        self.name = name
        self.page = page
        self.idle_seconds = idle_ms / 1000
        self.wake = wake or threading.Event()
        self.retry_policy = retry_policy or RetryPolicy()
        self.store_label = store_label
        self.broker_label = broker_label
        self.stop: Callable[[], bool] = lambda: False
        self.on_page = on_page
        tracking = _tracking_recorder(app)
        self._max_tracking_id = without_library_retries(tracking.max_tracking_id)
        self._insert_tracking = without_library_retries(tracking.insert_tracking)
        self.stats = RelayStats(position=tracking.max_tracking_id(name) or 0)

    def run(self, *, stop: Callable[[], bool] = lambda: False, max_seconds: float | None = None) -> RelayStats:
        """Publish until `stop()`; raises `Unavailable` when the store or the broker stays away too long."""
        self.stop = stop
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        try:
            while not stop() and (deadline is None or time.monotonic() < deadline):
                if not self.publish_page():
                    self.wake.wait(self.idle_seconds)
                    self.wake.clear()
        except Interrupted:
            pass  # stopped while waiting out an outage: the position saved so far is where the next run goes on
        return self.stats

    def publish_page(self) -> int:
        """Publish one page of the log, in four steps; returns how many events it published.

        1. Read up to `page` notifications after the saved position, in notification-id order.
        2. Send each one's stored JSON unchanged, keyed by ticket id, with type, id and versions in headers.
        3. Flush and check every send: on any failure the position is NOT saved; the whole page is sent again
           on a new producer, so an event is never skipped, only perhaps repeated.
        4. Save the position of the last one. A crash between 3 and 4 publishes the page again after a
           restart: consumers recognise the repeats by event id and stream version.

        Steps 1, 2-3 and 4 are each retried under the retry policy while the store or the broker is away.
        """
        notifications = self._retry_store("reading", self._read)
        if not notifications:
            return 0
        read_at = time.monotonic()
        self._retry(
            lambda: self._send_page(notifications),
            what=f"publishing to {self.broker_label}",
            transient=(KafkaError,),
            after_failure=self._drop_producer,
        )
        if self.on_page is not None:
            self.on_page(read_at, time.monotonic(), notifications)
        last = notifications[-1].id
        self._save_position(last)
        self.stats.position = last
        self.stats.published += len(notifications)
        self.stats.pages += 1
        return len(notifications)

    def _read(self) -> list[Notification]:
        return self._select_notifications(start=self.stats.position + 1, limit=self.page)

    def _send_page(self, notifications: list[Notification]) -> None:
        if self.producer is None:
            self.producer = self.new_producer()
        sends = [self._send(self.producer, n) for n in notifications]
        self.producer.flush(timeout=FLUSH_TIMEOUT_S)
        for send in sends:
            send.get(timeout=0)  # raises the broker's error for a send that failed

    def _save_position(self, notification_id: int) -> None:
        tries = itertools.count()

        def save() -> None:
            # After a failed try the save may have committed and only its reply been lost; saving again would
            # be refused as not beyond the stored position.
            if next(tries) and (self._max_tracking_id(self.name) or 0) >= notification_id:
                return
            self._insert_tracking(Tracking(self.name, notification_id))

        self._retry_store("saving the relay position in", save)

    def _retry_store(self, doing: str, action: Callable[[], T]) -> T:
        return self._retry(action, what=f"{doing} {self.store_label}", transient=STORE_OUTAGES)

    def _retry(self, action: Callable[[], T], **how) -> T:
        return retry(action, policy=self.retry_policy, stop=self.stop, **how)

    def _drop_producer(self, _error: BaseException) -> None:
        """Discard the producer after a failed send: what it still holds is sent again with the page."""
        if self.producer is not None:
            producer, self.producer = self.producer, None
            try:
                producer.close(timeout=0)
            except Exception as error:  # a broken client can fail to close; it is dropped all the same
                log.warning("closing the failed producer: %s", error)

    def _send(self, producer: KafkaProducer, notification: Notification):
        event_type, schema_version = _event_type(notification.topic)
        stored = orjson.loads(notification.state)
        headers = event_headers(
            event_type, schema_version, stored["event_id"], notification.originator_version, notification.id
        )
        # Ticket events are keyed by ticket id, customer events (PlanSubscribed) by customer id, MonthClosed by
        # its month: as documented.
        key = (stored.get("ticket_id") or stored.get("customer_id") or stored["month"]).encode()
        return producer.send(self.topic, key=key, value=notification.state, headers=headers)

    def close(self) -> None:
        if self.producer is not None:
            try:
                self.producer.flush(timeout=FLUSH_TIMEOUT_S)
            except KafkaError as error:  # nothing unsaved is lost: the position covers only acknowledged pages
                log.warning("relay: final flush failed: %s", error)
            self.producer.close(timeout=5)
        self.app.close()


def _tracking_recorder(app: Application) -> TrackingRecorder:
    """A tracking table in the same database as the events, named after the relay."""
    factory = InfrastructureFactory.construct(Environment(name="Relay", env=dict(app.env)))
    return factory.tracking_recorder()


def relay_producer(bootstrap: str, security: Mapping[str, Any] | None = None) -> KafkaProducer:
    """Idempotent, acks from all in-sync replicas, ordered per partition even with retries; bounded waits.

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
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        max_block_ms=MAX_BLOCK_MS,
    )
