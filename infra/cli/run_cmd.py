"""`nettask run | intake | relay | project | watchdog`: the engine's long-running components (`nettask alerts run` is in
alerts_cmd)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from infra.cli._common import fail
from infra.compose.components import StopFlag, run_components
from infra.compose.supervisor import ComponentFailed
from infra.kafka.layout import BrokerError
from infra.kafka.topics import TopicError
from infra.retry import Unavailable
from infra.settings import Settings

MaxSeconds = Annotated[
    float | None, typer.Option("--max-seconds", help="Stop after this many seconds (default: until Ctrl-C).")
]


def _run(names: list[str], max_seconds: float | None) -> None:
    """Exit 0 when stopped (Ctrl-C, SIGTERM, --max-seconds); 1 with one `error:` line when a component can't go on."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The Kafka client logs every refused connection, several a second while a broker is away; the relay's
    # retries and the supervisor say what failed, once per attempt, naming the broker.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    stop = StopFlag(max_seconds).install()
    try:
        run_components(Settings(), names, stop, say=lambda line: typer.echo(line, err=True))
    except (BrokerError, TopicError, Unavailable, ComponentFailed) as error:
        # Only the first line: a broker that failed to start appends its log tail, which is in its log file too.
        fail(str(error).splitlines()[0] if str(error) else type(error).__name__)


def run(max_seconds: MaxSeconds = None) -> None:
    """Everything on one machine: the local broker (unless KAFKA_BOOTSTRAP_SERVERS is set), intake, relay,
    projector, alerts and watchdog."""
    _run(["intake", "relay", "projector", "alerts", "watchdog"], max_seconds)


def intake(max_seconds: MaxSeconds = None) -> None:
    """Only the intake: commands from tickets.commands into the event store, the rest to the DLQ."""
    _run(["intake"], max_seconds)


def relay(max_seconds: MaxSeconds = None) -> None:
    """Only the relay: stored events onto tickets.events, in order."""
    _run(["relay"], max_seconds)


def project(max_seconds: MaxSeconds = None) -> None:
    """Only the projector: tickets.events into the SLA view, offsets kept with the rows."""
    _run(["projector"], max_seconds)


def watchdog(max_seconds: MaxSeconds = None) -> None:
    """Only the watchdog: passed SLA deadlines and months past their closing day, as commands on tickets.commands."""
    _run(["watchdog"], max_seconds)
