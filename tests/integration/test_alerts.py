"""Alerts on the real broker: breaches from the real pipeline become exactly one alert each, read with read_committed,
despite a repeated event and a crash between produce and commit; the webhook forwarder delivers each at least once."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from consumers.alert_webhook import WebhookForwarder, json_poster
from consumers.alerts import Alerts
from consumers.sla_alert import SlaAlert, alert_id
from domain import commands as c
from domain.watch import WATCHDOG_SOURCE
from infra.alert_settings import AlertSettings
from infra.compose.components import build_alerts, build_intake, build_relay
from infra.kafka.alert_clients import alert_consumer
from infra.messages import MESSAGE_ID, MESSAGE_TYPE, header
from infra.retry import RetryPolicy, Unavailable
from infra.settings import Settings
from tests.integration.helpers import (
    T0,
    RawMessage,
    delete_pipeline_topics,
    drain,
    open_ticket,
    pipeline_settings,
    publish,
    publish_raw,
    read_all,
    relay_everything,
    subscribe,
    topic_size,
    unique,
)

pytestmark = pytest.mark.kafka
TICKETS = 4
# Long past every first-response due time of a ticket opened at T0.
WATCHDOG_AT = T0 + timedelta(days=7)


class Crash(BaseException):
    """The process dying between the alerts' produce and the transaction's commit."""


@pytest.fixture
def pipeline(sqlite_settings: Settings, kafka_bootstrap: str) -> Iterator[Settings]:
    settings = pipeline_settings(sqlite_settings, kafka_bootstrap)
    yield settings
    delete_pipeline_topics(kafka_bootstrap, settings)


@pytest.fixture
def alert_settings() -> AlertSettings:
    suffix = uuid.uuid4().hex[:12]
    return AlertSettings(group=f"test-alerts-{suffix}", transactional_id=f"test-alerts-{suffix}")


def record_breach(ticket_id: uuid.UUID) -> c.RecordSlaBreach:
    return c.RecordSlaBreach(
        command_id=uuid.uuid4(), occurred_at=WATCHDOG_AT, actor="watchdog", source=WATCHDOG_SOURCE,
        ticket_id=ticket_id, metric="first_response",
    )  # fmt: skip


def breaches_published(
    settings: Settings, bootstrap: str, tickets: int = TICKETS, breached: bool = True
) -> list[c.OpenTicket]:
    """Tickets opened (and breached) through intake and relay: their events are on the events topic."""
    customer = unique("cust")
    openings = [open_ticket(customer) for _ in range(tickets)]
    breaches = [record_breach(o.ticket_id) for o in openings] if breached else []
    _through_the_pipeline(settings, bootstrap, [subscribe(customer)], [*openings, *breaches])
    return openings


def breach(settings: Settings, bootstrap: str, openings: list[c.OpenTicket]) -> None:
    """Breaches of tickets opened earlier, through intake and relay."""
    _through_the_pipeline(settings, bootstrap, [], [record_breach(o.ticket_id) for o in openings])


def _through_the_pipeline(settings: Settings, bootstrap: str, plans: list, commands: list) -> None:
    intake = build_intake(settings, bootstrap)
    try:
        if plans:  # first: the openings travel on other partitions than the plans they need
            publish(bootstrap, settings.topics.commands, plans)
            drain(intake, until=lambda: intake.stats.applied == len(plans))
        publish(bootstrap, settings.topics.commands, commands)
        drain(intake, until=lambda: intake.stats.applied == len(plans) + len(commands))
    finally:
        intake.close()
    relay = build_relay(settings, bootstrap)
    try:
        assert relay_everything(relay) == len(plans) + len(commands)
    finally:
        relay.close()


def breach_records(settings: Settings, bootstrap: str) -> list:
    events = settings.topics.events
    records = read_all(bootstrap, events, topic_size(bootstrap, events))
    return [r for r in records if header(r.headers, MESSAGE_TYPE) == "SlaBreached"]


def caught_up(alerts: Alerts, bootstrap: str, topic: str) -> bool:
    """Whether the alerts group has committed the end of every partition of the events topic."""
    partitions = [TopicPartition(topic, p) for p in alerts.consumer.partitions_for_topic(topic)]
    ends = alerts.consumer.end_offsets(partitions)
    return all((alerts.consumer.committed(tp) or 0) >= end for tp, end in ends.items())


def run_until_caught_up(alerts: Alerts, bootstrap: str, topic: str, max_polls: int = 600) -> None:
    for _ in range(max_polls):
        alerts.process_once(timeout_ms=100)
        if caught_up(alerts, bootstrap, topic):
            return
    raise AssertionError(f"the alerts consumer did not catch up in {max_polls} polls: {alerts.stats}")


def read_alerts(bootstrap: str, topic: str, isolation: str = "read_committed", timeout_s: float = 30.0) -> list:
    """Every record of `topic` up to its end as `isolation` sees it, in partition order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level=isolation)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        records: list = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end for tp, end in ends.items()) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def expected_alert_ids(breaches: list) -> set[str]:
    return {str(alert_id(uuid.UUID(header(r.headers, MESSAGE_ID)))) for r in breaches}


def assert_one_alert_per_breach(settings: Settings, bootstrap: str, breaches: list, openings: list) -> list[SlaAlert]:
    records = read_alerts(bootstrap, settings.topics.sla_alerts)
    alerts = [SlaAlert.model_validate_json(r.value) for r in records]
    assert sorted(str(a.alert_id) for a in alerts) == sorted(expected_alert_ids(breaches))
    references = {o.ticket_id: o.reference for o in openings}
    for record, alert in zip(records, alerts, strict=True):
        assert record.key == str(alert.ticket_id).encode()
        assert header(record.headers, MESSAGE_ID) == str(alert.alert_id)
        assert header(record.headers, MESSAGE_TYPE) == "SlaAlert"
        assert (alert.reference, alert.plan, alert.severity) == (references[alert.ticket_id], "standard", "C")
        assert alert.kind == "breach" and alert.minutes_late > 0
    return alerts


# --- exactly once ---------------------------------------------------------------------------------------------


def test_one_alert_per_breach_even_when_the_relay_published_a_breach_twice(pipeline, kafka_bootstrap, alert_settings):
    openings = breaches_published(pipeline, kafka_bootstrap)
    breaches = breach_records(pipeline, kafka_bootstrap)
    assert len(breaches) == TICKETS
    # The relay after a crash: the same event again, key, value and headers.
    repeat = breaches[0]
    publish_raw(kafka_bootstrap, pipeline.topics.events, [RawMessage(repeat.key, repeat.value, list(repeat.headers))])

    with build_alerts(pipeline, kafka_bootstrap, alerts=alert_settings) as alerts:
        run_until_caught_up(alerts, kafka_bootstrap, pipeline.topics.events)
        assert alerts.stats.alerts == TICKETS and alerts.stats.repeats >= 1

    assert_one_alert_per_breach(pipeline, kafka_bootstrap, breaches, openings)


def test_a_crash_between_produce_and_commit_leaves_one_alert_per_breach(pipeline, kafka_bootstrap, alert_settings):
    openings = breaches_published(pipeline, kafka_bootstrap)
    breaches = breach_records(pipeline, kafka_bootstrap)

    crashing = build_alerts(pipeline, kafka_bootstrap, alerts=alert_settings)
    crashing.producer.commit_transaction = _crash_after_flush(crashing.producer)
    with pytest.raises(Crash):
        for _ in range(600):
            crashing.process_once(timeout_ms=100)
    crashing.consumer.close()  # the producer is left as it was: its transaction stays open
    raw = read_alerts(kafka_bootstrap, pipeline.topics.sla_alerts, isolation="read_uncommitted")
    assert raw, "the crashed transaction's alerts reached the broker"

    with build_alerts(pipeline, kafka_bootstrap, alerts=alert_settings) as restarted:
        run_until_caught_up(restarted, kafka_bootstrap, pipeline.topics.events)

    assert_one_alert_per_breach(pipeline, kafka_bootstrap, breaches, openings)
    everything = read_alerts(kafka_bootstrap, pipeline.topics.sla_alerts, isolation="read_uncommitted")
    assert len(everything) > TICKETS  # the aborted copies are there, and read_committed never sees them


def _crash_after_flush(producer):
    def commit_transaction():
        producer.flush(timeout=30)
        raise Crash

    return commit_transaction


def test_a_restarted_consumer_rebuilds_its_facts_and_alerts_only_on_new_breaches(
    pipeline, kafka_bootstrap, alert_settings
):
    openings = breaches_published(pipeline, kafka_bootstrap, tickets=2)
    # Opened before the restart, breached after it: their alerts need facts only a rebuild can give back.
    later = breaches_published(pipeline, kafka_bootstrap, tickets=2, breached=False)
    with build_alerts(pipeline, kafka_bootstrap, alerts=alert_settings) as alerts:
        run_until_caught_up(alerts, kafka_bootstrap, pipeline.topics.events)
    breach(pipeline, kafka_bootstrap, later)

    with build_alerts(pipeline, kafka_bootstrap, alerts=alert_settings) as restarted:
        run_until_caught_up(restarted, kafka_bootstrap, pipeline.topics.events)
        assert restarted.stats.alerts == 2 and restarted.stats.rebuilds >= 1

    breaches = breach_records(pipeline, kafka_bootstrap)
    # The later tickets' openings were read during the rebuild: their alerts are enriched all the same.
    assert_one_alert_per_breach(pipeline, kafka_bootstrap, breaches, openings + later)


# --- the webhook forwarder ------------------------------------------------------------------------------------


class FlakyIncidentTool:
    """A local HTTP endpoint that answers 500 to every `fail_every`-th POST and 202 to the others."""

    def __init__(self, fail_every: int):
        self.fail_every = fail_every
        self.received: list[tuple[int, dict]] = []
        self.lock = threading.Lock()
        tool = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the http.server API)
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = tool.answer(body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v2/enqueue"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, body: dict) -> int:
        with self.lock:
            failing = self.fail_every > 0 and (len(self.received) + 1) % self.fail_every == 0
            status = 500 if failing else 202
            self.received.append((status, body))
            return status

    def __enter__(self) -> FlakyIncidentTool:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()


FAST_RETRIES = RetryPolicy(attempts=5, first_delay_s=0.01, max_delay_s=0.05)


def alerts_on_topic(settings: Settings, bootstrap: str, alert_settings: AlertSettings) -> set[str]:
    breaches_published(settings, bootstrap)
    with build_alerts(settings, bootstrap, alerts=alert_settings) as alerts:
        run_until_caught_up(alerts, bootstrap, settings.topics.events)
    return expected_alert_ids(breach_records(settings, bootstrap))


def committed_offsets(consumer: KafkaConsumer, topic: str) -> dict[int, int | None]:
    return {p: consumer.committed(TopicPartition(topic, p)) for p in consumer.partitions_for_topic(topic)}


def test_the_webhook_gets_every_alert_despite_500s_with_its_dedup_key(pipeline, kafka_bootstrap, alert_settings):
    expected = alerts_on_topic(pipeline, kafka_bootstrap, alert_settings)
    topic = pipeline.topics.sla_alerts
    with FlakyIncidentTool(fail_every=2) as tool:
        consumer = alert_consumer(pipeline, kafka_bootstrap, f"{alert_settings.group}-webhook")
        with WebhookForwarder(lambda: consumer, json_poster(tool.url, 5.0), "R0UT1NG", FAST_RETRIES) as forwarder:
            for _ in range(300):
                if forwarder.stats.delivered >= TICKETS:
                    break
                forwarder.process_once(timeout_ms=100)
            assert forwarder.stats.delivered == TICKETS
            committed = committed_offsets(consumer, topic)

    assert any(status == 500 for status, _ in tool.received)
    delivered = {body["dedup_key"] for status, body in tool.received if status == 202}
    assert delivered == expected
    for (status, body), (_, next_body) in zip(tool.received, tool.received[1:], strict=False):
        if status == 500:  # the retry is the same alert, with the same dedup key
            assert next_body["dedup_key"] == body["dedup_key"]
    for _, body in tool.received:
        assert body["routing_key"] == "R0UT1NG" and body["event_action"] == "trigger"
        assert body["dedup_key"] == body["payload"]["custom_details"]["alert_id"]
        assert body["payload"]["severity"] == "warning"
    # Each partition's offset is just past its last alert (a transaction's commit marker follows it).
    after_last = {r.partition: r.offset + 1 for r in read_alerts(kafka_bootstrap, topic)}
    assert committed == {p: after_last.get(p) for p in committed}


def test_the_webhook_commits_nothing_while_the_incident_tool_fails(pipeline, kafka_bootstrap, alert_settings):
    alerts_on_topic(pipeline, kafka_bootstrap, alert_settings)
    topic = pipeline.topics.sla_alerts
    with FlakyIncidentTool(fail_every=1) as tool:
        consumer = alert_consumer(pipeline, kafka_bootstrap, f"{alert_settings.group}-webhook")
        with WebhookForwarder(lambda: consumer, json_poster(tool.url, 5.0), "R0UT1NG", FAST_RETRIES) as forwarder:
            with pytest.raises(Unavailable):
                for _ in range(300):
                    forwarder.process_once(timeout_ms=100)
            assert forwarder.stats.delivered == 0
            assert all(offset is None for offset in committed_offsets(consumer, topic).values())

    assert len(tool.received) == FAST_RETRIES.attempts
    assert len({body["dedup_key"] for _, body in tool.received}) == 1
