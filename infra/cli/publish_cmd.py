"""`nettask publish`: put commands from a JSON-lines file onto `tickets.commands`, as another service would."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infra.cli._common import fail
from infra.cli.replay_cmd import read_lines
from infra.kafka.bootstrap import bootstrap_servers
from infra.kafka.layout import BrokerError
from infra.settings import Settings
from producers.client import CommandPublisher, InvalidCommand


def publish(
    commands: Annotated[Path, typer.Argument(metavar="COMMANDS.jsonl", help="One command JSON per line; - for stdin.")],
) -> None:
    """Validate each line and publish the valid ones (key, headers) to the commands topic; wait for the acks."""
    settings = Settings()
    try:
        bootstrap = bootstrap_servers(settings)
    except BrokerError as error:
        fail(str(error))
    published = invalid = 0
    with CommandPublisher(bootstrap, settings.topics.commands) as publisher:
        for number, line in enumerate(read_lines(commands), start=1):
            if not line.strip():
                continue
            try:
                publisher.publish(line)
                published += 1
            except InvalidCommand as error:
                invalid += 1
                typer.echo(f"{commands}:{number}: not published: {error.reason}", err=True)
    typer.echo(f"published {published} command(s) to {settings.topics.commands} on {bootstrap}; {invalid} invalid")
