"""`nettask alerts run | follow | webhook URL`: the alerts consumer, and on-call's two ways to receive its alerts."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from kafka.errors import KafkaError
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from consumers.alert_webhook import WebhookForwarder, json_poster
from consumers.sla_alert import AlertKind, SlaAlert
from domain.validation import validation_problems
from infra.alert_settings import AlertSettings
from infra.cli._common import fail
from infra.cli.run_cmd import MaxSeconds, _run
from infra.compose.components import StopFlag, kafka_unavailable
from infra.kafka.alert_clients import alert_consumer, alert_reader
from infra.kafka.bootstrap import bootstrap_servers
from infra.kafka.layout import BrokerError
from infra.retry import Unavailable
from infra.settings import Settings

app = typer.Typer(no_args_is_help=True, help=__doc__)
# On-call reads times on the business calendar's clock, as every other command shows them.
SHOWN_ZONE = ZoneInfo("Europe/Berlin")
POLL_MS = 500


class Format(StrEnum):
    RICH = "rich"
    JSON = "json"


@app.command("run")
def run(max_seconds: MaxSeconds = None) -> None:
    """Only the alerts consumer: SLA breaches and risks from tickets.events onto tickets.sla-alerts."""
    _run(["alerts"], max_seconds)


@app.command("follow")
def follow(
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="Every alert so far, then the new.")] = False,
    output: Annotated[Format, typer.Option("--format", help="rich: one line each; json: one object per line.")] = (
        Format.RICH
    ),
    max_seconds: MaxSeconds = None,
) -> None:
    """Print committed alerts as they arrive, from now on (or from the beginning), until Ctrl-C."""
    settings = Settings()
    bootstrap = _bootstrap(settings)
    stop = StopFlag(max_seconds).install()
    try:
        reader = alert_reader(settings, bootstrap, from_beginning)
    except (KafkaError, LookupError) as error:
        fail(str(kafka_unavailable(bootstrap, error)))
    console = Console(highlight=False, soft_wrap=True)
    try:
        while not stop():
            for record in _records(reader.poll(timeout_ms=POLL_MS)):
                _show(console, record.value, output)
    finally:
        reader.close()


@app.command("webhook")
def webhook(
    url: Annotated[
        str, typer.Argument(metavar="URL", help="Where to POST, e.g. https://events.pagerduty.com/v2/enqueue")
    ],
    max_seconds: MaxSeconds = None,
) -> None:
    """Forward every alert to URL as a PagerDuty Events API v2 event; offsets committed only after a 2xx."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    settings, alerts = Settings(), AlertSettings()
    if alerts.routing_key is None:
        fail("NETTASK_ALERTS_ROUTING_KEY is not set: the incident tool's integration (routing) key")
    bootstrap = _bootstrap(settings)
    stop = StopFlag(max_seconds).install()
    post = json_poster(url, alerts.webhook_timeout_s)
    key = alerts.routing_key.get_secret_value()
    try:
        forwarder = WebhookForwarder(
            lambda: alert_consumer(settings, bootstrap, alerts.webhook_group), post, key, alerts.webhook_retry(),
            target=url,
        )  # fmt: skip
    except KafkaError as error:
        fail(str(kafka_unavailable(bootstrap, error)))
    with forwarder:
        try:
            stats = forwarder.run(stop=stop)
        except Unavailable as error:
            fail(str(error))
    typer.echo(f"delivered {stats.delivered} alert(s) to {url}; {stats.skipped} unreadable passed over", err=True)


def _bootstrap(settings: Settings) -> str:
    try:
        return bootstrap_servers(settings)
    except BrokerError as error:
        fail(str(error).splitlines()[0])


def _records(batch: dict) -> list:
    """A poll batch in the order of time it was noticed, across partitions."""
    return sorted((r for records in batch.values() for r in records), key=lambda r: (r.timestamp, r.partition))


def _show(console: Console, value: bytes, output: Format) -> None:
    if output is Format.JSON:
        typer.echo(value.decode("utf-8", "replace"))
        return
    try:
        console.print(alert_line(SlaAlert.model_validate_json(value)))
    except ValidationError as error:
        console.print(f"[yellow]unreadable alert[/]: {escape(validation_problems(error, first_only=True))}")


def alert_line(alert: SlaAlert) -> str:
    """One rich line: kind, ticket, customer, plan, severity, metric, due time and how late or how soon."""
    due = alert.due_at.astimezone(SHOWN_ZONE).strftime("%Y-%m-%d %H:%M")
    if alert.kind is AlertKind.BREACH:
        kind, when = "[bold red]BREACH [/]", f"due {due}, {alert.minutes_late} min late"
    else:
        kind, when = "[bold yellow]AT RISK[/]", f"due {due}, {alert.minutes_left} min left"
    ticket = escape(alert.reference or str(alert.ticket_id))
    plan, severity = escape(alert.plan or "?"), alert.severity or "?"
    return (
        f"{kind} {ticket} [dim]{escape(alert.customer_id)}[/] {plan} sev {severity} {escape(alert.metric)} "
        f"{when} [dim]alert {alert.alert_id}[/]"
    )
