"""Statements shown to people: rich tables, JSON and CSV, amounts as exact decimals, instants in the calendar zone."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

from rich import box
from rich.table import Table

from domain.money import ZERO
from domain.statement import Statement
from infra.display import local

CSV_COLUMNS = (
    "customer_id", "month", "plan", "status", "as_of",
    "line", "ticket_id", "reference", "detail", "amount", "event_ids",
)  # fmt: skip


def status(statement: Statement, zone: ZoneInfo) -> str:
    """ "closed 2026-04-05 00:00" or "open, as of 2026-04-20 12:00": an open statement may still change."""
    when = statement.as_of.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    return f"closed {when}" if statement.closed else f"open, as of {when}"


def as_json(statement: Statement, zone: ZoneInfo) -> dict[str, Any]:
    """The whole statement, instants in `zone`, plus its status in words; Decimals stay Decimals for to_json."""
    return local(statement, zone) | {"month": str(statement.month), "status": status(statement, zone)}


def csv_text(statements: Iterable[Statement], zone: ZoneInfo) -> str:
    """One row per line of every statement (fee, incidents, callbacks, adjustments, then net, VAT, gross)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for statement in statements:
        head = (statement.customer_id, str(statement.month), statement.plan, *_status_cells(statement, zone))
        writer.writerows((*head, *row) for row in _rows(statement, zone))
    return out.getvalue()


def _status_cells(statement: Statement, zone: ZoneInfo) -> tuple[str, str]:
    return ("closed" if statement.closed else "open"), statement.as_of.astimezone(zone).isoformat()


def _rows(statement: Statement, zone: ZoneInfo) -> Iterator[tuple[str, ...]]:
    """(line, ticket_id, reference, detail, amount, event_ids) for every line of the statement."""
    yield "fee", "", "", f"plan {statement.plan}", str(statement.plan_fee), ""
    for line in statement.incident_lines:
        detail = f"{line.severity} {line.band.value}, opened {line.opened_at.astimezone(zone).isoformat()}"
        detail += ", included" if line.included else ""
        ids = _ids(line.source_event_ids)
        yield "incident", str(line.ticket_id), line.reference or "", detail, str(line.price), ids
    for call in statement.callback_lines:
        detail = f"callback {call.done_at.astimezone(zone).isoformat()}" + (", over allowance" if call.over else "")
        yield "callback", str(call.ticket_id), call.reference or "", detail, str(call.price), str(call.event_id)
    for adjustment in statement.adjustments:
        detail = f"{adjustment.month}: {adjustment.reason}"
        ids = _ids(adjustment.source_event_ids)
        yield "adjustment", str(adjustment.ticket_id), adjustment.reference or "", detail, str(adjustment.amount), ids
    yield "net", "", "", "", str(statement.net), ""
    yield "vat", "", "", f"{statement.vat_rate} of net", str(statement.vat), ""
    yield "gross", "", "", "", str(statement.gross), ""


def _ids(ids: Iterable[Any]) -> str:
    return " ".join(str(id_) for id_ in ids)


def statement_table(statement: Statement, zone: ZoneInfo) -> Table:
    """Every line of one statement, with the counts and totals in the caption."""
    title = f"{statement.customer_id} {statement.month}: plan {statement.plan}, {status(statement, zone)}"
    table = Table(title=title, caption=_caption(statement))
    for column in ("line", "ticket", "detail", "events"):
        table.add_column(column, overflow="fold")  # ids are folded, never cut: they are how a line is traced
    table.add_column(f"amount {statement.currency}", justify="right")
    for line, ticket_id, reference, detail, amount, ids in _rows(statement, zone):
        ticket = f"{reference}\n{ticket_id}" if reference else ticket_id
        table.add_row(line, ticket, detail, ids.replace(" ", "\n"), amount)
    return table


def _caption(statement: Statement) -> str:
    counts = ", ".join(f"{c.severity} {c.band.value} {c.count}" for c in statement.incident_counts if c.count)
    return (
        f"incidents: {counts or 'none'}; included used {statement.included_used} of {statement.included_allowance}; "
        f"callbacks used {statement.callbacks_used} of {statement.callbacks_included}, over {statement.callbacks_over}"
    )


def month_table(statements: Iterable[Statement], zone: ZoneInfo, title: str) -> Table:
    """One row per customer: what their statement for the month comes to (`statement` shows the lines)."""
    caption = "incidents: counted (included); callbacks: used (over the allowance); `statement` shows the lines"
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("customer", overflow="fold")
    table.add_column("plan", overflow="fold")
    for header in ("incidents", "callbacks", "fee", "adjust.", "net", "VAT", "gross"):
        table.add_column(header, justify="right", no_wrap=True)  # money is never cut short
    table.add_column("status", overflow="fold")
    for s in statements:
        adjusted = sum((a.amount for a in s.adjustments), start=ZERO)
        table.add_row(
            s.customer_id, s.plan, f"{len(s.incident_lines)} ({s.included_used})",
            f"{s.callbacks_used} ({s.callbacks_over})", str(s.plan_fee), str(adjusted), str(s.net), str(s.vat),
            str(s.gross), _short_status(s, zone),
        )  # fmt: skip
    return table


def _short_status(statement: Statement, zone: ZoneInfo) -> str:
    when = statement.as_of.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return f"closed {when}" if statement.closed else f"open, as of {when}"
