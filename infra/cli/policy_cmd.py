"""`nettask policy check | show`: validate a policy file, or show the version in force at a date."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from domain.policy import Policy
from infra.cli._common import PolicyOption, fail, policy_book, refusals_reported

app = typer.Typer(no_args_is_help=True, help="Validate and show the support policy.")


@app.command()
def check(file: Annotated[Path, typer.Argument(metavar="FILE")]) -> None:
    """Validate a policy file; errors name the field that is wrong."""
    with refusals_reported():
        book = policy_book(file)
    versions = ", ".join(f"{p.version} (from {p.effective_from})" for p in book.policies)
    typer.echo(f"ok: {file}: {len(book.policies)} version(s): {versions}")


@app.command()
def show(
    at: Annotated[str | None, typer.Option(metavar="DATE", help="A date (YYYY-MM-DD); default: the latest.")] = None,
    policy: PolicyOption = None,
) -> None:
    """Show the policy version in force at a date: plans, severities, prices, calendar."""
    with refusals_reported():
        book = policy_book(policy)
        chosen = book.in_force(_start_of(at, book.latest)) if at else book.latest
    _print(chosen)


def _start_of(text: str, policy: Policy) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        fail(f"{text!r} is not a date like 2026-03-01")
    return datetime.combine(day, time(12), tzinfo=policy.calendar.zone)


def _print(policy: Policy) -> None:
    console = Console()
    console.print(
        f"[bold]policy {policy.version}[/bold], in force from {policy.effective_from}; "
        f"VAT {policy.vat_rate * 100:.0f} %, at risk at {policy.at_risk_share * 100:.0f} % of a target, "
        f"statements close on day {policy.statement_closing_day}"
    )
    console.print(_plans(policy))
    console.print(_severities(policy))
    calendar = policy.calendar
    hours = ", ".join(f"{day[:3]} {o:%H:%M}-{c:%H:%M}" for day, (o, c) in calendar.opening_hours.items())
    region = calendar.country + (f"-{calendar.subdivision}" if calendar.subdivision else " (nationwide)")
    console.print(f"calendar: {calendar.timezone}; {hours}; holidays {region}")


def _plans(policy: Policy) -> Table:
    table = Table(title="plans")
    for column in ("plan", "fee/month", "first response", "incl. incidents", "callbacks", "departments", "phone"):
        table.add_column(column)
    for name, plan in policy.plans.items():
        table.add_row(
            name,
            f"{plan.monthly_fee} {policy.currency}",
            f"{plan.first_response_hours} h",
            str(plan.included_incidents),
            str(plan.callbacks_per_month),
            ", ".join(sorted(plan.departments)),
            "hotline" + (" + escalation" if plan.escalation_phone else "") if plan.phone_hotline else "-",
        )
    return table


def _severities(policy: Policy) -> Table:
    table = Table(title="severities and per-incident prices")
    for column in ("severity", "meaning", "first reaction", "clock", "business hours", "after hours"):
        table.add_column(column)
    for severity, rule in policy.severities.items():
        price = policy.incident_prices[severity]
        table.add_row(
            severity.value,
            rule.meaning,
            f"{rule.first_response_hours} h",
            rule.clock.value,
            f"{price.business_hours} {policy.currency}",
            f"{price.after_hours} {policy.currency}",
        )
    return table
