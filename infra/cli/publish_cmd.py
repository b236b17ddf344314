"""`nettask publish`: put commands from a JSON-lines file onto `tickets.commands`, as another service would."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from kafka.errors import KafkaError, KafkaTimeoutError

from domain.commands import Command, SubscribePlan
from infra.cli._common import fail
from infra.cli.replay_cmd import read_lines
from infra.kafka.bootstrap import bootstrap_servers
from infra.kafka.clients import ConnectionFailures, connection_failures, security_config
from infra.kafka.layout import BrokerError
from infra.settings import Settings
from producers.client import CommandPublisher, InvalidCommand, MissingTopic, TopicNotAuthorized, validated

# Long enough for a cluster that answers, short enough that an operator hears soon that it does not.
CONNECT_TIMEOUT_MS = 10_000


def publish(
    commands: Annotated[Path, typer.Argument(metavar="COMMANDS.jsonl", help="One command JSON per line; - for stdin.")],
) -> None:
    """Validate each line and publish the valid ones (key, headers) to the commands topic; wait for the acks."""
    settings = Settings()
    try:
        bootstrap = bootstrap_servers(settings)
    except BrokerError as error:
        fail(str(error))
    valid, invalid = _validated(commands)
    # Plans first, acknowledged before any ticket: they travel on the customers' partitions, and an Open that
    # reaches the engine before its customer's plan is refused. Order among plans never matters (effective dates).
    plans = [c for c in valid if isinstance(c, SubscribePlan)]
    batches = [plans, [c for c in valid if not isinstance(c, SubscribePlan)]]
    topic = settings.topics.commands
    with connection_failures() as failures:
        _publish(settings, bootstrap, batches, failures)
    typer.echo(f"published {len(valid)} command(s) to {topic} on {bootstrap}; {invalid} invalid")


def _publish(settings: Settings, bootstrap: str, batches: list[list[Command]], failures: ConnectionFailures) -> None:
    """Publish batch after batch, each acknowledged before the next; any failure ends the command in one line."""
    topic = settings.topics.commands
    security = security_config(settings)
    try:
        with CommandPublisher(bootstrap, topic, bootstrap_timeout_ms=CONNECT_TIMEOUT_MS, **security) as publisher:
            for batch in batches:
                _acknowledged(publisher, publisher.publish_all(batch))
    except TopicNotAuthorized as error:
        fail(str(error))
    except MissingTopic as error:
        fail(f"{error}; create it with `nettask kafka topics` or set NETTASK_TOPIC_COMMANDS")
    except KafkaTimeoutError as error:
        fail(f"cannot publish to {topic} on {bootstrap}: {error}; last failure: {failures.reason()}")
    except KafkaError as error:
        fail(f"cannot publish to {topic} on {bootstrap}: {type(error).__name__}: {error}")


def _acknowledged(publisher: CommandPublisher, sends: list) -> None:
    """Wait for the broker's acknowledgements; raise the first failed send's error."""
    publisher.flush()
    for send in sends:
        send.get(timeout=0)


def _validated(path: Path) -> tuple[list[Command], int]:
    valid, invalid = [], 0
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            valid.append(validated(line))
        except InvalidCommand as error:
            invalid += 1
            typer.echo(f"{path}:{number}: not published: {error.reason}", err=True)
    return valid, invalid
