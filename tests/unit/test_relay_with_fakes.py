"""The relay's paging, forwarding and position, driven by a fake Kafka producer over an in-memory store."""

from __future__ import annotations

import orjson
import pytest
from eventsourcing.persistence import OperationalError
from eventsourcing.popo import POPOTrackingRecorder
from kafka.errors import KafkaError, KafkaTimeoutError

from consumers.write_side import WriteSide
from domain.desk import TicketDesk
from infra.messages import MESSAGE_ID, MESSAGE_TYPE, NOTIFICATION_ID, SCHEMA, STREAM_VERSION, header
from infra.retry import RetryPolicy, Unavailable
from producers.relay import Relay
from tests.unit.builders import escalate, new_desk, open_ticket, respond, subscribe, unique

TOPIC = "tickets.events"
# No waiting between attempts: the fake broker fails or succeeds at once.
AT_ONCE = RetryPolicy(attempts=3, first_delay_s=0.0, max_delay_s=0.0)


class Sent:
    """What kafka-python's send returns, as far as the relay uses it: get() raises the broker's refusal."""

    def __init__(self, error: KafkaError | None):
        self.error = error

    def get(self, timeout: float | None = None) -> None:
        if self.error is not None:
            raise self.error


class FakeProducer:
    """Keeps what was sent; refuses the sends numbered in `failing` (counted from 0 over its life)."""

    def __init__(self, failing: frozenset[int] = frozenset()):
        self.sent: list[dict] = []
        self.failing = failing
        self.flushes = 0
        self.closed = False

    def send(self, topic: str, key: bytes, value: bytes, headers: list) -> Sent:
        number = len(self.sent)
        self.sent.append({"topic": topic, "key": key, "value": value, "headers": headers})
        return Sent(KafkaTimeoutError("not acknowledged") if number in self.failing else None)

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1

    def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


class Producers:
    """The composition root's producer factory: hands out the given producers in turn, records each it built."""

    def __init__(self, *producers: FakeProducer):
        self.waiting = list(producers)
        self.built: list[FakeProducer] = []

    def __call__(self) -> FakeProducer:
        producer = self.waiting.pop(0) if self.waiting else FakeProducer()
        self.built.append(producer)
        return producer

    def sent(self) -> list[dict]:
        return [message for producer in self.built for message in producer.sent]


def stored_tickets(desk: TicketDesk, tickets: int) -> list:
    """A customer on a plan and `tickets` tickets, each opened, answered and escalated: 1 + 3 per ticket events."""
    customer = unique("cust")
    commands = [subscribe(customer, "standard")]
    for _ in range(tickets):
        opening = open_ticket(customer, "2026-03-02T10:00+01:00")
        commands += [
            opening,
            respond(opening.ticket_id, "2026-03-02T10:30+01:00"),
            escalate(opening.ticket_id, "2026-03-02T11:00+01:00", to="B"),
        ]
    WriteSide(desk).handle_batch(commands)
    return desk.recorder.select_notifications(start=1, limit=10_000)


def new_relay(desk: TicketDesk, producers: Producers, page: int = 4, tracking=None) -> Relay:
    return Relay(desk, producers, TOPIC, "relay-test", page, idle_ms=1, retry_policy=AT_ONCE, tracking=tracking)


def publish_all(relay: Relay) -> list[int]:
    """publish_page() until a page is empty; the size of every page published."""
    pages = []
    while published := relay.publish_page():
        pages.append(published)
    return pages


def test_every_stored_event_goes_out_in_store_order_as_stored_keyed_and_with_its_headers():
    desk, producers = new_desk(), Producers()
    notifications = stored_tickets(desk, 3)
    with new_relay(desk, producers) as relay:
        publish_all(relay)
    sent = producers.sent()
    assert [m["value"] for m in sent] == [n.state for n in notifications]  # the stored bytes, not re-encoded
    for message, notification in zip(sent, notifications, strict=True):
        stored = orjson.loads(notification.state)
        assert message["topic"] == TOPIC
        assert message["key"] == (stored.get("ticket_id") or stored["customer_id"]).encode()
        assert header(message["headers"], MESSAGE_TYPE) == notification.topic.rsplit(":", 1)[-1]
        assert header(message["headers"], SCHEMA) == "1"
        assert header(message["headers"], MESSAGE_ID) == stored["event_id"]
        assert header(message["headers"], STREAM_VERSION) == str(notification.originator_version)
        assert header(message["headers"], NOTIFICATION_ID) == str(notification.id)


def test_pages_are_the_configured_size_each_flushed_once_and_the_position_saved_after_each():
    desk, producers = new_desk(), Producers()
    stored_tickets(desk, 3)  # 10 events
    relay = new_relay(desk, producers, page=4)
    assert publish_all(relay) == [4, 4, 2]
    assert producers.built[0].flushes == 3
    assert (relay.stats.position, relay.stats.pages, relay.stats.published) == (10, 3, 10)
    relay.close()


def test_a_new_relay_goes_on_after_the_saved_position_and_publishes_only_what_came_since():
    desk, tracking = new_desk(), POPOTrackingRecorder()
    stored_tickets(desk, 2)
    first = Producers()
    publish_all(new_relay(desk, first, tracking=tracking))
    stored_tickets(desk, 1)
    second = Producers()
    later = new_relay(desk, second, tracking=tracking)
    assert later.stats.position == 7
    assert publish_all(later) == [4]
    assert [int(header(m["headers"], NOTIFICATION_ID)) for m in second.sent()] == [8, 9, 10, 11]


def test_a_page_the_broker_did_not_acknowledge_is_sent_again_whole_on_a_new_producer_before_the_position_moves():
    desk = new_desk()
    stored_tickets(desk, 2)  # 7 events
    failing = FakeProducer(failing=frozenset({2}))  # the third event of the first page is refused
    producers = Producers(failing)
    relay = new_relay(desk, producers, page=4)
    assert publish_all(relay) == [4, 3]
    assert failing.closed and len(producers.built) == 2
    ids = [int(header(m["headers"], NOTIFICATION_ID)) for m in producers.sent()]
    assert ids == [1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7]  # repeated, never skipped
    assert relay.stats.position == 7


def test_a_broker_that_keeps_refusing_leaves_the_position_where_it_was_and_names_the_broker():
    desk = new_desk()
    stored_tickets(desk, 1)
    producers = Producers(*(FakeProducer(failing=frozenset(range(100))) for _ in range(3)))
    relay = Relay(desk, producers, TOPIC, "relay-test", 4, 1, retry_policy=AT_ONCE, broker_label="Kafka at b:9092")
    with relay, pytest.raises(Unavailable, match="publishing to Kafka at b:9092: failed 3 times in a row"):
        relay.publish_page()
    assert relay.stats.position == 0


def test_events_stored_while_a_page_travels_are_published_next_and_none_is_skipped():
    desk, producers = new_desk(), Producers()
    stored_tickets(desk, 1)  # 4 events: one page; the page read ahead during it is empty
    relay = new_relay(desk, producers, page=4)
    assert relay.publish_page() == 4
    stored_tickets(desk, 1)
    assert publish_all(relay) == [4]
    assert [int(header(m["headers"], NOTIFICATION_ID)) for m in producers.sent()] == list(range(1, 9))


def test_a_page_read_ahead_is_used_only_if_it_starts_at_the_saved_position():
    desk, producers = new_desk(), Producers()
    stored_tickets(desk, 2)
    relay = new_relay(desk, producers, page=4)
    relay.publish_page()
    relay.stats.position = 2  # as if the position had been saved elsewhere: the page read ahead is stale
    assert relay.publish_page() == 4
    assert [int(header(m["headers"], NOTIFICATION_ID)) for m in producers.sent()][4:] == [3, 4, 5, 6]


def test_a_full_page_reads_the_next_one_ahead_and_a_short_page_reads_nothing_ahead(monkeypatch):
    desk, producers = new_desk(), Producers()
    stored_tickets(desk, 2)  # 7 events: a full page of 4, then a short one of 3 that reached the log's end
    relay = new_relay(desk, producers, page=4)
    reads, starts = relay._select_notifications, []
    monkeypatch.setattr(relay, "_select_notifications", lambda **where: starts.append(where["start"]) or reads(**where))
    assert relay.publish_page() == 4
    assert starts == [1, 5]  # the first page, and the second read ahead during it
    assert relay.publish_page() == 3
    assert starts == [1, 5]  # the page read ahead was taken; nothing read ahead during the short page
    assert relay.publish_page() == 0
    assert starts == [1, 5, 8]  # the log's end, looked at only when asked


def test_a_store_that_fails_while_reading_ahead_is_read_again_with_retries(monkeypatch):
    desk, producers = new_desk(), Producers()
    stored_tickets(desk, 2)
    relay = new_relay(desk, producers, page=4)
    reads, calls = relay._select_notifications, []

    def second_read_fails(**where):
        calls.append(where["start"])
        if len(calls) == 2:  # the read ahead during the first page
            raise OperationalError("database is locked")
        return reads(**where)

    monkeypatch.setattr(relay, "_select_notifications", second_read_fails)
    assert publish_all(relay) == [4, 3]
    assert calls[:3] == [1, 5, 5]  # the failed read ahead, then the same page read again
    assert [int(header(m["headers"], NOTIFICATION_ID)) for m in producers.sent()] == list(range(1, 8))


def test_the_relay_closes_its_producer_and_its_store_on_leaving_a_with_block():
    desk, producers = new_desk(), Producers()
    stored_tickets(desk, 1)
    with new_relay(desk, producers) as relay:
        relay.connect()
        relay.publish_page()
    assert producers.built[0].closed
