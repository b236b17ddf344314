"""Relay and intake ride out a restart of their broker and of their PostgreSQL server: nothing lost or skipped."""

from __future__ import annotations

import logging
import threading

import pytest

from consumers.intake import Intake
from consumers.write_side import WriteSide
from infra.compose.components import build_intake, build_relay
from infra.compose.desk import build_desk
from infra.compose.supervisor import StopFlag
from infra.kafka import topics
from infra.settings import Settings
from producers.relay import Relay
from tests.integration.helpers import (
    assert_published_in_order,
    delete_pipeline_topics,
    open_ticket,
    pipeline_settings,
    publish,
    stored_log,
    subscribe,
    topic_size,
    unique,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Far more tries than any restart here needs: these tests are about riding an outage out, not about the limit.
PATIENT = {"retry_attempts": 30, "retry_max_delay_s": 2.0}
TICKETS_PER_BATCH = 25


def store_tickets(settings: Settings, tickets: int = TICKETS_PER_BATCH) -> None:
    """A customer's plan and `tickets` openings, stored through a desk of its own."""
    customer = unique("cust")
    desk = build_desk(settings)
    try:
        WriteSide(desk).handle_batch([subscribe(customer), *(open_ticket(customer) for _ in range(tickets))])
    finally:
        desk.close()


class Running:
    """A component's own run loop in a thread, as `nettask intake|relay` runs it; what it raised is kept."""

    def __init__(self, component: Relay | Intake):
        self.component = component
        self.stop = StopFlag()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.component.run(stop=self.stop)
        except BaseException as error:
            self.error = error

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the component did not stop"
        self.component.close()


def retry_lines(caplog: pytest.LogCaptureFixture, what: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "infra.retry" and r.getMessage().startswith(what)]


def test_the_relay_rides_out_a_restart_of_its_broker(private_kafka, sqlite_settings, caplog):
    caplog.set_level(logging.WARNING, logger="infra.retry")
    bootstrap = private_kafka.bootstrap
    settings = pipeline_settings(sqlite_settings, bootstrap).model_copy(update=PATIENT)
    store_tickets(settings)
    runner = Running(build_relay(settings, bootstrap))
    try:
        # 1. The first batch is published while the broker is up.
        first = len(stored_log(settings))
        assert wait_until(lambda: topic_size(bootstrap, settings.topics.events) >= first, 60)
        # 2. The broker goes away; a second batch is stored meanwhile and its sends fail, each attempt logged.
        private_kafka.stop()
        store_tickets(settings)
        assert wait_until(lambda: retry_lines(caplog, f"publishing to Kafka at {bootstrap} failed"), 90)
        # 3. Back again: the relay publishes everything without being restarted itself.
        private_kafka.start()
        total = len(stored_log(settings))
        assert wait_until(lambda: runner.component.stats.position == stored_log(settings)[-1].id, 120), runner.error
        assert runner.error is None
    finally:
        runner.finish()
    assert topic_size(bootstrap, settings.topics.events) >= total
    assert_published_in_order(settings, bootstrap)


def test_the_relay_rides_out_a_restart_of_its_postgresql_server(private_postgres, kafka_bootstrap, caplog):
    caplog.set_level(logging.WARNING, logger="infra.retry")
    settings = pipeline_settings(private_postgres.settings(**PATIENT), kafka_bootstrap)
    store_tickets(settings)
    runner = Running(build_relay(settings, kafka_bootstrap))
    try:
        # 1. The first batch is published while the server is up.
        first = len(stored_log(settings))
        assert wait_until(lambda: topic_size(kafka_bootstrap, settings.topics.events) >= first, 60)
        # 2. The server goes away under the relay's pooled connections; its reads fail, each attempt logged.
        private_postgres.stop()
        where = f"reading PostgreSQL at 127.0.0.1:{private_postgres.port}"
        assert wait_until(lambda: retry_lines(caplog, where), 60)
        # 3. Back again; more is stored, and the relay, never restarted, publishes it after the first batch.
        private_postgres.start()
        store_tickets(settings)
        last = stored_log(settings)[-1].id
        assert wait_until(lambda: runner.component.stats.position == last, 120), runner.error
        assert runner.error is None
    finally:
        runner.finish()
    assert topic_size(kafka_bootstrap, settings.topics.events) >= len(stored_log(settings))
    assert_published_in_order(settings, kafka_bootstrap)
    delete_pipeline_topics(kafka_bootstrap, settings)


def test_topics_survive_the_private_broker_restart(private_kafka):
    """The premise of the broker test: a restarted private broker still has its topics and records."""
    name = unique("test.survives")
    topics.create_topic(private_kafka.bootstrap, name, partitions=1)
    private_kafka.stop()
    private_kafka.start()
    assert name in topics.describe(private_kafka.bootstrap, [name])


def test_the_intake_rides_out_a_restart_of_its_postgresql_server(private_postgres, kafka_bootstrap, caplog):
    caplog.set_level(logging.WARNING, logger="consumers.intake")
    settings = pipeline_settings(private_postgres.settings(**PATIENT), kafka_bootstrap)
    customer = unique("cust")
    before = [subscribe(customer), *(open_ticket(customer) for _ in range(TICKETS_PER_BATCH))]
    during = [open_ticket(customer) for _ in range(TICKETS_PER_BATCH)]
    runner = Running(build_intake(settings, kafka_bootstrap))
    try:
        # 1. A first batch is applied while the server is up.
        publish(kafka_bootstrap, settings.topics.commands, before)
        assert wait_until(lambda: runner.component.stats.applied == len(before), 60), runner.error
        # 2. The server goes away; commands published meanwhile fail to store, each attempt logged.
        private_postgres.stop()
        publish(kafka_bootstrap, settings.topics.commands, during)
        assert wait_until(
            lambda: any("applying a batch to the event store failed" in r.getMessage() for r in caplog.records), 90
        )
        # 3. Back again: the intake, never restarted, applies them.
        private_postgres.start()
        assert wait_until(lambda: runner.component.stats.applied == len(before) + len(during), 120), runner.error
        assert runner.error is None
    finally:
        runner.finish()
    assert len(stored_log(settings)) == len(before) + len(during)
    assert topic_size(kafka_bootstrap, settings.topics.commands_dlq) == 0
    delete_pipeline_topics(kafka_bootstrap, settings)


def test_the_intake_rides_out_a_restart_of_its_broker(private_kafka, sqlite_settings):
    bootstrap = private_kafka.bootstrap
    settings = pipeline_settings(sqlite_settings, bootstrap).model_copy(update=PATIENT)
    customer = unique("cust")
    before = [subscribe(customer), *(open_ticket(customer) for _ in range(TICKETS_PER_BATCH))]
    after = [open_ticket(customer) for _ in range(TICKETS_PER_BATCH)]
    runner = Running(build_intake(settings, bootstrap))
    try:
        publish(bootstrap, settings.topics.commands, before)
        assert wait_until(lambda: runner.component.stats.applied == len(before), 60), runner.error
        private_kafka.stop()
        private_kafka.start()
        publish(bootstrap, settings.topics.commands, after)
        # The consumer reconnects by itself (or rejoins afresh after a minute without partitions).
        assert wait_until(lambda: runner.component.stats.applied == len(before) + len(after), 150), runner.error
        assert runner.error is None
    finally:
        runner.finish()
    assert len(stored_log(settings)) == len(before) + len(after)
