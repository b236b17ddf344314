"""The `nettask` command line: the composition root for operators, analysts and tests."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError

from domain.validation import validation_problems
from infra.cli import (
    alerts_cmd,
    api_cmd,
    calendar_cmd,
    kafka_cmd,
    policy_cmd,
    projections_cmd,
    publish_cmd,
    replay_cmd,
    run_cmd,
    schema_cmd,
    sla_cmd,
    statement_cmd,
    views_cmd,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(sla_cmd.app, name="sla")
app.add_typer(calendar_cmd.app, name="calendar")
app.add_typer(policy_cmd.app, name="policy")
app.add_typer(kafka_cmd.app, name="kafka")
app.add_typer(alerts_cmd.app, name="alerts")
app.add_typer(projections_cmd.app, name="projections")
app.command("replay")(replay_cmd.replay)
app.command("publish")(publish_cmd.publish)
app.command("schema")(schema_cmd.schema)
app.command("statement")(statement_cmd.statement_of)
app.command("statements")(statement_cmd.statements_of)
app.command("run")(run_cmd.run)
app.command("intake")(run_cmd.intake)
app.command("relay")(run_cmd.relay)
app.command("project")(run_cmd.project)
app.command("watchdog")(run_cmd.watchdog)
app.command("tickets")(views_cmd.tickets)
app.command("ticket")(views_cmd.ticket)
app.command("breaches")(views_cmd.breaches)
app.command("at-risk")(views_cmd.at_risk)
app.command("queue")(views_cmd.queue)
app.command("api")(api_cmd.api)


def main() -> None:
    try:
        app()
    except ValidationError as error:
        # Settings come from the environment, read inside each command: a bad value is the operator's to fix.
        if error.title not in ("Settings", "TopicSettings"):
            raise
        prefix = "NETTASK_TOPIC_" if error.title == "TopicSettings" else "NETTASK_"
        typer.echo(f"error: settings: {settings_problems(error, prefix)}", err=True)
        sys.exit(1)


def settings_problems(error: ValidationError, prefix: str = "NETTASK_") -> str:
    """Every problem on one line: `NETTASK_STORE: String should match ...; ...`."""
    return validation_problems(error, where=lambda location: _variable(prefix, location))


def _variable(prefix: str, location: tuple[int | str, ...]) -> str:
    """The environment variable of a setting, or '' for a problem of the settings as a whole."""
    name = "_".join(str(part) for part in location).upper()
    return f"{prefix}{name}" if name else ""
