"""`nettask run | intake | relay`: the engine's long-running components."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from infra.kafka.broker import BrokerError
from infra.runner import StopFlag, run_components
from infra.settings import Settings

MaxSeconds = Annotated[
    float | None, typer.Option("--max-seconds", help="Stop after this many seconds (default: until Ctrl-C).")
]


def _run(names: list[str], max_seconds: float | None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = StopFlag(max_seconds).install()
    try:
        run_components(Settings(), names, stop, say=lambda line: typer.echo(line, err=True))
    except BrokerError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


def run(max_seconds: MaxSeconds = None) -> None:
    """Everything on one machine: the local broker (unless KAFKA_BOOTSTRAP_SERVERS is set), intake and relay."""
    _run(["intake", "relay"], max_seconds)


def intake(max_seconds: MaxSeconds = None) -> None:
    """Only the intake: commands from tickets.commands into the event store, the rest to the DLQ."""
    _run(["intake"], max_seconds)


def relay(max_seconds: MaxSeconds = None) -> None:
    """Only the relay: stored events onto tickets.events, in order."""
    _run(["relay"], max_seconds)
