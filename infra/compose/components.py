"""Runs the components (intake, relay, projector, alerts, watchdog), alone (one process each) or together
(`nettask run`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kafka.errors import KafkaError

from consumers.alerts import Alerts
from consumers.intake import Intake
from consumers.projector import Projector
from consumers.watchdog import Clock, Watchdog, wall_clock
from infra.alert_settings import AlertSettings
from infra.compose.desk import build_desk
from infra.compose.parking import build_parking_lot
from infra.compose.projections import build_projection_database
from infra.compose.supervisor import RestartLimit, StopFlag, Supervisor
from infra.kafka.alert_clients import alert_producer, event_consumer
from infra.kafka.bootstrap import bootstrap_servers
from infra.kafka.clients import security_config
from infra.kafka.command_clients import command_consumers, dead_letter_producer
from infra.kafka.event_clients import event_consumers
from infra.kafka.relay_clients import relay_producers
from infra.kafka.topics import ensure_topics
from infra.policy_files import load_policy
from infra.retry import Unavailable, one_line
from infra.settings import Settings
from infra.store import describe_store
from infra.store_reads import states_reader
from producers.client import CommandPublisher
from producers.relay import Relay
from projections.billing.projection import BillingProjection
from projections.sla.explanations import ExplanationProjection
from projections.sla.projection import SlaProjection

__all__ = [
    "StopFlag", "build_alerts", "build_intake", "build_projector", "build_relay", "build_watchdog", "prepare",
    "run_components",
]  # fmt: skip

log = logging.getLogger(__name__)
Say = Callable[[str], None]


def prepare(settings: Settings, say: Say) -> str:
    """The broker's address (starting the local one if no cluster is configured) with the topics in place."""
    bootstrap = bootstrap_servers(settings, progress=say)
    try:
        ensure_topics(bootstrap, settings.topics, progress=say)
    except KafkaError as error:
        raise kafka_unavailable(bootstrap, error) from error
    return bootstrap


def kafka_unavailable(bootstrap: str, error: BaseException) -> Unavailable:
    return Unavailable(f"Kafka at {bootstrap} is unreachable or refused: {one_line(error)}")


def build_intake(
    settings: Settings, bootstrap: str, stored: threading.Event | None = None, group: str | None = None
) -> Intake:
    desk = build_desk(settings)
    try:
        return Intake(
            settings,
            desk,
            command_consumers(settings, bootstrap, group),
            dead_letter_producer(settings, bootstrap),
            build_parking_lot(settings),
            on_stored=stored.set if stored else lambda: None,
            read_states=states_reader(desk),
        )
    except KafkaError as error:
        desk.close()
        raise kafka_unavailable(bootstrap, error) from error


def build_relay(settings: Settings, bootstrap: str, stored: threading.Event | None = None) -> Relay:
    # Woken by the intake next to it, the relay need only look now and then for events stored elsewhere.
    idle_ms = settings.idle_wait_ms * 20 if stored else settings.idle_wait_ms
    return Relay(
        build_desk(settings),
        relay_producers(settings, bootstrap),
        settings.topics.events,
        settings.relay_name,
        settings.relay_page,
        idle_ms,
        wake=stored,
        retry_policy=settings.retry_policy(),
        store_label=describe_store(settings),
        broker_label=f"Kafka at {bootstrap}",
    )


def build_alerts(
    settings: Settings, bootstrap: str, _stored: threading.Event | None = None, alerts: AlertSettings | None = None
) -> Alerts:
    alerts = alerts or AlertSettings()
    producer = None
    try:
        producer = alert_producer(settings, bootstrap, alerts)
        return Alerts(lambda: event_consumer(settings, bootstrap, alerts), producer, settings.topics.sla_alerts)
    except KafkaError as error:
        if producer is not None:
            producer.close()
        raise kafka_unavailable(bootstrap, error) from error


def build_projector(
    settings: Settings, bootstrap: str, stored: threading.Event | None = None, group: str | None = None
) -> Projector:
    """The projector with every projection, on the projections' database (`stored` is not needed: it polls)."""
    book = load_policy(settings.policy_file)
    db = build_projection_database(settings)
    try:
        return Projector(
            db,
            [SlaProjection(db), ExplanationProjection(db, book), BillingProjection(db, book)],
            event_consumers(settings, bootstrap, group),
            dead_letter_producer(settings, bootstrap),
            topic=settings.topics.events,
            dlq_topic=settings.topics.events_dlq,
            group=group or settings.projector_group,
            refresh_every_ms=settings.billing_refresh_ms,
        )
    except KafkaError as error:
        db.close()
        raise kafka_unavailable(bootstrap, error) from error


def build_watchdog(
    settings: Settings, bootstrap: str, _stored: threading.Event | None = None, now: Clock = wall_clock
) -> Watchdog:
    """The watchdog on the projections' database, publishing onto the commands topic; `now` is its clock."""
    book = load_policy(settings.policy_file)
    db = build_projection_database(settings)
    try:
        publisher = CommandPublisher(bootstrap, settings.topics.commands, **security_config(settings))
    except KafkaError as error:
        db.close()
        raise kafka_unavailable(bootstrap, error) from error
    return Watchdog(db, publisher, book, now=now, interval_s=settings.watchdog_interval_s)


def run_components(settings: Settings, names: list[str], stop: StopFlag, say: Say, report_every: float = 10.0) -> None:
    """Run the named components ('intake', 'relay', 'projector', 'alerts', 'watchdog') in threads until `stop`,
    restarting any that fails.

    Raises `Unavailable` when the broker or the store cannot be reached at start, and `ComponentFailed` when a
    component fails more often than the restart limit allows.
    """
    bootstrap = prepare(settings, say)
    builders = {
        "intake": build_intake, "relay": build_relay, "projector": build_projector, "alerts": build_alerts,
        "watchdog": build_watchdog,
    }  # fmt: skip
    # Together in one process, the intake wakes the relay the moment it stored something.
    stored = threading.Event() if {"intake", "relay"} <= set(names) else None
    supervisor = Supervisor(
        {name: _builder(builders[name], settings, bootstrap, stored) for name in names},
        stop,
        RestartLimit(settings.restart_limit, settings.restart_window_s),
        say,
    )
    supervisor.start()
    say(f"running {', '.join(names)} against {bootstrap}; Ctrl-C stops")
    try:
        supervisor.run(report=lambda: say(_progress(supervisor.components)), report_every=report_every)
    finally:
        say("stopped; " + _progress(supervisor.components))


def _builder(build, settings: Settings, bootstrap: str, stored: threading.Event | None):
    return lambda: build(settings, bootstrap, stored)


def _progress(components: dict) -> str:
    parts = []
    if intake := components.get("intake"):
        s = intake.stats
        parts.append(
            f"intake: {s.applied} applied, {s.unchanged} repeats, {s.refused} refused, {s.invalid} invalid, "
            f"{s.parked} parked to wait for a plan or opening, {s.released} released"
        )
    if relay := components.get("relay"):
        parts.append(f"relay: {relay.stats.published} published, position {relay.stats.position}")
    if projector := components.get("projector"):
        s = projector.stats
        parts.append(
            f"projector: {s.applied} applied, {s.repeats} repeats, {s.dead_letters} dead letters, {s.batches} batches"
        )
    if alerts := components.get("alerts"):
        parts.append(f"alerts: {alerts.stats.alerts} raised, {alerts.stats.repeats} repeats dropped")
    if watchdog := components.get("watchdog"):
        s = watchdog.stats
        parts.append(f"watchdog: {s.breaches} breaches, {s.risks} risks, {s.months} months closed, {s.resent} resent")
    return "; ".join(parts)
