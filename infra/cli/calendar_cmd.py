"""`nettask calendar`: working time on the business calendar of the policy in force."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from domain.calendar import BusinessCalendar
from domain.targets import calendar_for
from infra.cli._common import PolicyOption, fail, parse_instant, policy_book, refusals_reported

app = typer.Typer(no_args_is_help=True, help=__doc__)


@app.command()
@refusals_reported()
def add(
    start: Annotated[str, typer.Option("--from", metavar="ISO8601", help="Start, with its UTC offset.")],
    hours: Annotated[str | None, typer.Option(metavar="H", help="Working hours to add, e.g. 1.5.")] = None,
    minutes: Annotated[int | None, typer.Option(metavar="M", help="Working minutes to add.")] = None,
    policy: PolicyOption = None,
) -> None:
    """Print the instant that much working time after --from."""
    work = _work(hours, minutes)
    opened = parse_instant(start)
    calendar = _calendar(opened, policy)
    typer.echo(calendar.add(opened, work).astimezone(calendar.zone).isoformat())


@app.command()
@refusals_reported()
def between(
    start: Annotated[str, typer.Option("--from", metavar="ISO8601", help="Start, with its UTC offset.")],
    end: Annotated[str, typer.Option("--to", metavar="ISO8601", help="End, with its UTC offset.")],
    policy: PolicyOption = None,
) -> None:
    """Print the working minutes between --from and --to (0 if --to is not later)."""
    first = parse_instant(start)
    worked = _calendar(first, policy).between(first, parse_instant(end))
    typer.echo(worked // timedelta(minutes=1))


def _calendar(at: datetime, policy: PolicyOption) -> BusinessCalendar:
    return calendar_for(policy_book(policy).in_force(at))


def _work(hours: str | None, minutes: int | None) -> timedelta:
    """Exactly one of --hours and --minutes, as a whole, non-negative number of minutes."""
    if (hours is None) == (minutes is None):
        fail("give exactly one of --hours and --minutes")
    total = Decimal(minutes) if hours is None else _decimal_hours(hours) * 60
    if total < 0:
        fail("working time must not be negative")
    if total != total.to_integral_value():
        fail(f"--hours {hours} is not a whole number of minutes; working time is counted to the minute")
    return timedelta(minutes=int(total))


def _decimal_hours(text: str | None) -> Decimal:
    try:
        value = Decimal(text or "")
    except InvalidOperation:
        fail(f"--hours must be a number of hours, like 1.5, not {text!r}")
    if not value.is_finite():
        fail(f"--hours must be a finite number of hours, not {text!r}")
    return value
