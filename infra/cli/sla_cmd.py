"""`nettask sla`: SLA due times as the policy in force computes them."""

from __future__ import annotations

from typing import Annotated

import typer

from domain.targets import calendar_for, first_response_due
from infra.cli._common import PolicyOption, parse_instant, policy_book, refusals_reported

app = typer.Typer(no_args_is_help=True, help=__doc__)


@app.command()
@refusals_reported()
def due(
    plan: Annotated[str, typer.Option(help="Support plan, e.g. basic, plus, standard, professional.")],
    severity: Annotated[str, typer.Option(metavar="A|B|C", help="Severity at opening.")],
    language: Annotated[str, typer.Option(metavar="de|en", help="Language of the ticket.")],
    opened: Annotated[str, typer.Option(metavar="ISO8601", help="Opening instant, with its UTC offset.")],
    policy: PolicyOption = None,
) -> None:
    """Print when the first response is due, in the calendar's time zone."""
    opened_at = parse_instant(opened)
    in_force = policy_book(policy).in_force(opened_at)
    calendar = calendar_for(in_force)
    due_at = first_response_due(in_force, calendar, plan, severity, language, opened_at)
    typer.echo(due_at.astimezone(calendar.zone).isoformat())
