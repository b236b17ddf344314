"""`nettask sla`: SLA due times as the policy in force computes them."""

from __future__ import annotations

import sys
from typing import Annotated
from uuid import UUID

import typer

from domain.errors import TicketNotFound
from domain.explain import explain_metric
from domain.targets import calendar_for, first_response_due
from infra.cli._common import PolicyOption, parse_instant, policy_book, refusals_reported
from infra.compose.desk import build_desk
from infra.display import local, to_json
from infra.settings import Settings

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


@app.command()
@refusals_reported()
def explain(
    ticket: Annotated[str, typer.Argument(metavar="TICKET_ID", help="The ticket id (a UUID).")],
    metric: Annotated[str, typer.Option(help="first_response, or next_response:N.")] = "first_response",
    policy: PolicyOption = None,
) -> None:
    """Explain a ticket's SLA metric from the event store: policy, clock, pauses, closed hours skipped."""
    book = policy_book(policy)
    ticket_id = _ticket_id(ticket)
    desk = build_desk(Settings(), book)
    try:
        events = list(desk.events_of(ticket_id))
    finally:
        desk.close()
    if not events:
        raise TicketNotFound(f"no ticket {ticket} in the event store")
    explanation = explain_metric(events, metric, book)
    sys.stdout.buffer.write(to_json(local(explanation, book.latest.calendar.zone)) + b"\n")


def _ticket_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a ticket id (a UUID like 481b2ff6-97c1-5bec-8cc0-c70713fd3ae3)") from None
