"""The watchdog in the real pipeline, on SQLite and PostgreSQL: its commands come back to the view, once each."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from domain import commands as c
from domain import events as ev
from domain.sla import MetricState
from infra.compose.components import build_intake, build_projector, build_relay, build_watchdog
from infra.compose.desk import build_desk
from infra.compose.projections import build_projection_database
from infra.settings import Settings
from projections.sla import queries
from tests.integration.helpers import (
    T0,
    delete_pipeline_topics,
    drain,
    handled,
    open_ticket,
    pipeline_settings,
    publish,
    relay_everything,
    subscribe,
    topic_size,
    unique,
)

pytestmark = pytest.mark.kafka
TICKETS = 3
# Severity C on the standard plan, opened Monday 10:00: the first response is due at 14:00 the same day.
DUE = T0 + timedelta(hours=4)
# March closes at 00:00 on the 5th of April, Berlin time.
MARCH_CLOSES = datetime.fromisoformat("2026-04-05T00:00:00+02:00")


@pytest.fixture
def pipeline(store_settings: Settings, kafka_bootstrap: str) -> Iterator[Settings]:
    settings = pipeline_settings(store_settings, kafka_bootstrap)
    yield settings
    delete_pipeline_topics(kafka_bootstrap, settings)


def apply_commands(settings: Settings, bootstrap: str, commands: list[c.Command], decided: int) -> None:
    """Publish the commands and let the intake decide until it has decided `decided` commands in all."""
    intake = build_intake(settings, bootstrap)
    try:
        if commands:
            publish(bootstrap, settings.topics.commands, commands)
        drain(intake, until=lambda: handled(intake) >= decided)
    finally:
        intake.close()


def relay_and_project(settings: Settings, bootstrap: str) -> None:
    """Every stored event onto the events topic, and from there into the view, until the view has them all."""
    relay = build_relay(settings, bootstrap)
    try:
        published = relay_everything(relay)
    finally:
        relay.close()
    with build_projector(settings, bootstrap) as projector:
        stats = projector.run(max_messages=published, max_seconds=60.0)
    assert stats.records == published


def tickets_in_the_view(settings: Settings, bootstrap: str) -> list[c.OpenTicket]:
    customer = unique("cust")
    openings = [open_ticket(customer, T0 + timedelta(seconds=n)) for n in range(TICKETS)]
    apply_commands(settings, bootstrap, [subscribe(customer)], decided=1)
    apply_commands(settings, bootstrap, openings, decided=TICKETS)
    relay_and_project(settings, bootstrap)
    return openings


def first_responses(settings: Settings) -> list[dict]:
    db = build_projection_database(settings)
    try:
        return [m for row in queries.tickets(db) for m in queries.metrics_of(db, row["ticket_id"])]
    finally:
        db.close()


def stored(settings: Settings, event_type: type) -> list:
    desk = build_desk(settings)
    try:
        return [event for event in desk.recorded_events() if isinstance(event, event_type)]
    finally:
        desk.close()


def test_a_breach_the_watchdog_notices_comes_back_to_the_view(pipeline, kafka_bootstrap):
    tickets_in_the_view(pipeline, kafka_bootstrap)
    assert {m["state"] for m in first_responses(pipeline)} == {MetricState.RUNNING}

    with build_watchdog(pipeline, kafka_bootstrap, now=lambda: DUE + timedelta(minutes=1)) as watchdog:
        stats = watchdog.run(max_looks=1, max_seconds=60)
    apply_commands(pipeline, kafka_bootstrap, [], decided=TICKETS)
    relay_and_project(pipeline, kafka_bootstrap)

    assert (stats.breaches, stats.risks, stats.months) == (TICKETS, 0, 0)
    metrics = first_responses(pipeline)
    assert len(metrics) == TICKETS
    assert all(m["state"] == MetricState.BREACHED and m["breached_at"] == m["due_at"] for m in metrics)
    assert {m["due_at"] for m in metrics} == {DUE + timedelta(seconds=n) for n in range(TICKETS)}
    assert len(stored(pipeline, ev.SlaBreached)) == TICKETS


def test_two_watchdogs_at_once_record_each_breach_and_close_each_month_once(pipeline, kafka_bootstrap):
    tickets_in_the_view(pipeline, kafka_bootstrap)

    with (
        build_watchdog(pipeline, kafka_bootstrap, now=lambda: MARCH_CLOSES) as first,
        build_watchdog(pipeline, kafka_bootstrap, now=lambda: MARCH_CLOSES + timedelta(hours=5)) as second,
    ):
        sent = first.look_once() + second.look_once()  # the view has not caught up between the two
    closing = next(command for command in sent if isinstance(command, c.CloseMonth))
    # A watchdog that lost its table closes the month again, with the very same command.
    publish(kafka_bootstrap, pipeline.topics.commands, [closing])
    apply_commands(pipeline, kafka_bootstrap, [], decided=len(sent) + 1)
    relay_and_project(pipeline, kafka_bootstrap)

    assert sum(isinstance(command, c.RecordSlaBreach) for command in sent) == 2 * TICKETS
    assert len(stored(pipeline, ev.SlaBreached)) == TICKETS
    assert [event.month for event in stored(pipeline, ev.MonthClosed)] == ["2026-03"]
    assert topic_size(kafka_bootstrap, pipeline.topics.commands_dlq) == 0  # no repeat was taken for a conflict
    assert topic_size(kafka_bootstrap, pipeline.topics.events_dlq) == 0  # the projector skips MonthClosed
    assert all(m["state"] == MetricState.BREACHED for m in first_responses(pipeline))
