"""`nettask tickets | ticket | breaches | at-risk | queue`: the SLA view, for analysts."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from domain.ticket import TicketStatus
from infra.cli._common import bad_argument, fail, parse_instant, policy_book
from infra.compose.projections import build_projection_database
from infra.display import local, to_json
from infra.retry import Unavailable
from infra.settings import Settings
from projections.database import ProjectionDatabase
from projections.sla import queries
from projections.sla.projection import SlaProjection

FORMATS = ("table", "json", "csv")
FormatOption = Annotated[str, typer.Option("--format", metavar="table|json|csv", help="Output format.")]
NowOption = Annotated[
    str | None, typer.Option("--now", metavar="ISO8601", help="The instant to look at (default: now).")
]
Rows = Sequence[dict[str, Any]]
# What a terminal table shows; JSON and CSV carry every column.
TICKET_COLUMNS = ("reference", "customer_id", "plan", "severity", "status", "opened_at", "resolved_at")
METRIC_COLUMNS = ("metric", "state", "target_minutes", "clock", "due_at", "met_at", "breached_at", "minutes_late")
BREACH_COLUMNS = ("reference", "customer_id", "severity", "status", "metric", "due_at", "recorded", "minutes_late")
RISK_COLUMNS = ("reference", "customer_id", "severity", "metric", "at_risk_at", "due_at", "at_risk_flagged")
QUEUE_COLUMNS = ("reference", "customer_id", "severity", "department", "opened_at", "next_due")
HISTORY_COLUMNS = ("month", "customer_id", "plan", "severity", "decided", "breached", "breach_rate")
TIMELINE_COLUMNS = ("version", "event_type", "occurred_at", "actor", "detail")


def tickets(
    customer: Annotated[str | None, typer.Option(help="Only this customer's tickets.")] = None,
    status: Annotated[str | None, typer.Option(metavar="|".join(TicketStatus), help="Only tickets in it.")] = None,
    format: FormatOption = "table",
) -> None:
    """Tickets of the SLA view, newest first."""
    chosen = _status(status)
    with _views(format) as db:
        _show(queries.tickets(db, customer, chosen), format, "tickets", TICKET_COLUMNS)


def ticket(
    reference_or_id: Annotated[str, typer.Argument(metavar="REF_OR_ID", help="The ticket's id or reference.")],
    format: FormatOption = "table",
) -> None:
    """One ticket: its SLA view, its metrics and its timeline of events."""
    with _views(format) as db:
        found = queries.find_ticket(db, reference_or_id)
        if found is None:
            bad_argument(f"no ticket {reference_or_id!r} in the SLA view (give its id or its reference)")
        metrics = queries.metrics_of(db, found["ticket_id"])
        timeline = queries.timeline(db, found["ticket_id"])
    if format == "json":
        _write_json({"ticket": found, "metrics": metrics, "timeline": timeline})
    elif format == "csv":
        _write_csv([{"ticket_id": found["ticket_id"], **m} for m in metrics])  # the metrics: the tabular part
    else:
        _table([{"field": k, "value": v} for k, v in found.items()], f"ticket {found['reference']}", ("field", "value"))
        _table(metrics, "SLA metrics", METRIC_COLUMNS)
        _table([{**e, "detail": _short(e["detail"])} for e in timeline], "timeline", TIMELINE_COLUMNS)


def breaches(
    history: Annotated[bool, typer.Option(help="Breach rate per customer, plan, severity and month.")] = False,
    now: NowOption = None,
    format: FormatOption = "table",
) -> None:
    """Breaches now (recorded, or past due and not yet recorded) of unfinished tickets; or the breach history."""
    at = _now(now)
    with _views(format) as db:
        rows = queries.breach_history(db) if history else queries.breached_now(db, at)
    if history:
        _show(rows, format, "breach history", HISTORY_COLUMNS)
    else:
        _show(rows, format, "breached now", BREACH_COLUMNS)


def at_risk(now: NowOption = None, format: FormatOption = "table") -> None:
    """Running metrics past their at-risk time and not yet due, soonest due first."""
    at = _now(now)
    with _views(format) as db:
        _show(queries.at_risk_now(db, at), format, "at risk", RISK_COLUMNS)


def queue(format: FormatOption = "table") -> None:
    """The work queue: open tickets, severity A first, then by the next due time."""
    with _views(format) as db:
        _show(queries.work_queue(db), format, "work queue", QUEUE_COLUMNS)


@contextmanager
def _views(format: str) -> Iterator[ProjectionDatabase]:
    """The projections' database with its tables in place (empty until the projector ran)."""
    if format not in FORMATS:
        bad_argument(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    try:
        db = build_projection_database(Settings())
        with db.transaction() as cursor:
            SlaProjection(db).create_tables(cursor)
    except Unavailable as error:
        fail(str(error))
    try:
        yield db
    finally:
        db.close()


def _status(text: str | None) -> TicketStatus | None:
    if text is None:
        return None
    try:
        return TicketStatus(text)
    except ValueError:
        bad_argument(f"unknown status {text!r}; use one of {', '.join(TicketStatus)}")


def _now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        return parse_instant(text)
    except ValueError as error:
        bad_argument(str(error))


def _zone() -> ZoneInfo:
    return policy_book(None).latest.calendar.zone


def _show(rows: Rows, format: str, title: str, columns: Sequence[str]) -> None:
    if format == "json":
        _write_json(list(rows))
    elif format == "csv":
        _write_csv(rows)
    else:
        _table(rows, title, columns)


def _write_json(value: Any) -> None:
    sys.stdout.buffer.write(to_json(local(value, _zone())) + b"\n")


def _write_csv(rows: Rows) -> None:
    if not rows:
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    zone = _zone()
    writer.writerows({k: _cell(v, zone, iso=True) for k, v in row.items()} for row in rows)


def _table(rows: Rows, title: str, columns: Sequence[str]) -> None:
    console = Console()
    if not rows:
        console.print(f"{title}: none")
        return
    table = Table(title=title)
    for name in columns:
        table.add_column(name)
    zone = _zone()
    for row in rows:
        table.add_row(*(_cell(row.get(name), zone) for name in columns))
    console.print(table)


def _cell(value: Any, zone: ZoneInfo, iso: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        shown = value.astimezone(zone)
        return shown.isoformat() if iso else shown.strftime("%Y-%m-%d %H:%M %Z")
    return str(value)


def _short(detail: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in detail.items())
