"""The outbox relay: follows the event store's notification log and publishes each event to `tickets.events`."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple, TypeVar

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory, Notification, Tracking, TrackingRecorder
from eventsourcing.utils import Environment, resolve_topic
from kafka.errors import KafkaError

from infra.kafka.relay_clients import DELIVERY_TIMEOUT_MS
from infra.messages import Headers, TypeHeaders, event_headers, event_type_headers
from infra.retry import Interrupted, RetryPolicy, retry
from infra.store import STORE_OUTAGES, without_library_retries

T = TypeVar("T")
log = logging.getLogger(__name__)
# flush() should end by the delivery timeout; this bounds it should the client ever hang.
FLUSH_TIMEOUT_S = DELIVERY_TIMEOUT_MS / 1000 + 5
# Told after each page the broker acknowledged: (taken to send at, acknowledged at, the page's messages),
# time.monotonic() instants. How a benchmark splits the latency; a relay without one pays nothing.
PageObserver = Callable[[float, float, list["Message"]], None]
# What the relay needs of a Kafka producer: send(topic, key=, value=, headers=), flush(timeout=), close(timeout=).
Producer = Any


@dataclass
class RelayStats:
    published: int = 0
    pages: int = 0
    position: int = 0


class Message(NamedTuple):
    """One stored event as it goes onto the topic: its stored JSON unchanged (a tuple: made a thousand a page)."""

    key: bytes
    value: bytes
    headers: Headers


@dataclass(frozen=True)
class Page:
    """The notifications read after position `after`, up to and including `last`, as messages."""

    after: int
    last: int
    messages: list[Message]


@cache
def _type_headers(topic: str) -> TypeHeaders:
    """The type and schema headers of a stored event topic like 'domain.events:Opened'."""
    event_class = resolve_topic(topic)
    return event_type_headers(event_class.__name__, getattr(event_class, "schema_version", 1))


def message(notification: Notification) -> Message:
    """The stored JSON unchanged, keyed and with headers, without rebuilding the domain event."""
    stored = orjson.loads(notification.state)
    headers = event_headers(
        _type_headers(notification.topic), stored["event_id"], notification.originator_version, notification.id
    )
    # Ticket events are keyed by ticket id, customer events (PlanSubscribed) by customer id, MonthClosed by its
    # month: as documented.
    key = stored.get("ticket_id") or stored.get("customer_id") or stored["month"]
    return Message(key.encode(), notification.state, headers)


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
        producers: Callable[[], Producer],
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
        tracking: TrackingRecorder | None = None,
    ):
        """`producers` builds a producer when the relay first sends, and again after a failed send (the old one
        may be wedged); the composition root gives it.

        `wake`, set by an intake in the same process whenever it stored something, ends an idle wait early.
        The labels name the store and the broker (host and port) in log lines and errors. `tracking` keeps the
        position; by default a tracking table in the store's own database.
        """
        self.app = app  # held: a collected Application closes its connection pool
        # The relay's own retries report every failed attempt; the library's would hide the first ten.
        self._select_notifications = without_library_retries(app.recorder.select_notifications)
        self.producers = producers
        self.producer: Producer | None = None
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
        self._ahead: Page | None = None
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-read-ahead")
        tracking = tracking or _tracking_recorder(app)
        self._max_tracking_id = without_library_retries(tracking.max_tracking_id)
        self._insert_tracking = without_library_retries(tracking.insert_tracking)
        self.stats = RelayStats(position=tracking.max_tracking_id(name) or 0)

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def connect(self) -> None:
        """Build the producer and fetch the topic's metadata now rather than on the first page."""
        self._producer().partitions_for(self.topic)

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
        """Publish one page of the log, in five steps; returns how many events it published.

        1. Take the page read ahead during the previous one if it starts at the saved position; else read up
           to `page` notifications after the saved position, in notification-id order.
        2. After a full page, start reading the next page in the reader's thread, so that the store's round trip
           overlaps the broker's (a read that fails there is only left to step 1 of the next page).
        3. Send each one's stored JSON unchanged, keyed by ticket id, with type, id and versions in headers.
        4. Flush and check every send: on any failure the position is NOT saved; the whole page is sent again
           on a new producer, so an event is never skipped, only perhaps repeated.
        5. Save the position of the last one. A crash between 4 and 5 publishes the page again after a
           restart: consumers recognise the repeats by event id and stream version.

        Steps 1, 2-4 and 5 are each retried under the retry policy while the store or the broker is away.
        """
        page = self._take_ahead() or self._retry_store("reading", lambda: self._read(self.stats.position))
        if page is None:
            return 0
        read_at = time.monotonic()
        self._retry(
            lambda: self._send_page(page),
            what=f"publishing to {self.broker_label}",
            transient=(KafkaError,),
            after_failure=self._drop_producer,
        )
        if self.on_page is not None:
            self.on_page(read_at, time.monotonic(), page.messages)
        self._save_position(page.last)
        self.stats.position = page.last
        self.stats.published += len(page.messages)
        self.stats.pages += 1
        return len(page.messages)

    def _read(self, after: int) -> Page | None:
        notifications = self._select_notifications(start=after + 1, limit=self.page)
        if not notifications:
            return None
        return Page(after, notifications[-1].id, [message(n) for n in notifications])

    def _take_ahead(self) -> Page | None:
        page, self._ahead = self._ahead, None
        return page if page is not None and page.after == self.stats.position else None

    def _may_continue(self, page: Page) -> bool:
        """A full page: the log may go on after it. A short one reached the log's end when it was read, so a read
        ahead would find nothing, or only what an intake stores meanwhile, which wakes the relay anyway; at a
        paced rate every page is short, and that empty read cost a store query and a hop between threads on
        the way to the broker's acknowledgement."""
        return len(page.messages) >= self.page

    def _read_ahead(self, after: int) -> Future[Page | None] | None:
        """The page after `after`, being read in the reader's thread; None if it was read already."""
        if self._ahead is not None and self._ahead.after == after:
            return None
        return self._reader.submit(self._read, after)

    def _keep_ahead(self, reading: Future[Page | None] | None) -> None:
        if reading is None:
            return
        try:
            self._ahead = reading.result()
        except STORE_OUTAGES as error:
            log.debug("reading ahead in %s failed, read again with retries: %s", self.store_label, error)
            self._ahead = None

    def _send_page(self, page: Page) -> None:
        producer = self._producer()
        # Only this thread touches the producer; the reader's thread touches only the store.
        reading = self._read_ahead(page.last) if self._may_continue(page) else None
        try:
            sends = [producer.send(self.topic, key=m.key, value=m.value, headers=m.headers) for m in page.messages]
            producer.flush(timeout=FLUSH_TIMEOUT_S)
        finally:
            self._keep_ahead(reading)
        for send in sends:
            send.get(timeout=0)  # raises the broker's error for a send that failed

    def _producer(self) -> Producer:
        if self.producer is None:
            self.producer = self.producers()
        return self.producer

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

    def close(self) -> None:
        if self.producer is not None:
            try:
                self.producer.flush(timeout=FLUSH_TIMEOUT_S)
            except KafkaError as error:  # nothing unsaved is lost: the position covers only acknowledged pages
                log.warning("relay: final flush failed: %s", error)
            self.producer.close(timeout=5)
        self._reader.shutdown()
        self.app.close()


def _tracking_recorder(app: Application) -> TrackingRecorder:
    """A tracking table in the same database as the events, named after the relay."""
    factory = InfrastructureFactory.construct(Environment(name="Relay", env=dict(app.env)))
    return factory.tracking_recorder()
