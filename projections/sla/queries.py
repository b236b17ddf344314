"""Questions analysts ask the SLA view: breaches, risks, the work queue, breach history, one ticket's story."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from domain.sla import MetricState
from domain.ticket import TicketStatus
from projections.database import ProjectionDatabase
from projections.sla.tables import METRICS, TICKETS, TIMELINE

Row = dict[str, Any]
# Tickets support still has to act on, or wait on: their open metrics count as breached or at risk.
UNFINISHED = (TicketStatus.OPEN.value, TicketStatus.AWAITING_CUSTOMER.value)
TICKET_FIELDS = (
    "ticket_id", "reference", "source", "customer_id", "plan", "department", "channel", "language", "severity",
    "status", "opened_at", "resolved_at", "version",
)  # fmt: skip
METRIC_FIELDS = (
    "metric", "target_minutes", "clock", "started_at", "due_at", "at_risk_at", "at_risk_flagged", "state", "met_at",
    "breached_at", "answered_at", "minutes_late", "policy_version",
)  # fmt: skip
# Severity A first: the order of the work queue.
SEVERITY_ORDER = "CASE t.severity WHEN 'A' THEN 0 WHEN 'B' THEN 1 ELSE 2 END"


def tickets(db: ProjectionDatabase, customer: str | None = None, status: TicketStatus | None = None) -> list[Row]:
    """Tickets, newest opening first, of one customer and/or in one status."""
    where, parameters = [], []
    if customer is not None:
        where.append(f"t.customer_id = {db.mark}")
        parameters.append(customer)
    if status is not None:
        where.append(f"t.status = {db.mark}")
        parameters.append(status.value)
    condition = f"WHERE {' AND '.join(where)}" if where else ""
    return _rows(db, f"SELECT {_ticket_columns()} FROM {db.table(TICKETS)} t {condition} ORDER BY t.opened_at DESC",
                 parameters, TICKET_FIELDS)  # fmt: skip


def find_ticket(db: ProjectionDatabase, reference_or_id: str) -> Row | None:
    """A ticket by its id (a UUID) or by the reference its source gave it; None if the view has neither."""
    column = "ticket_id" if _is_uuid(reference_or_id) else "reference"
    key = str(UUID(reference_or_id)) if column == "ticket_id" else reference_or_id
    found = _rows(db, f"SELECT {_ticket_columns()} FROM {db.table(TICKETS)} t WHERE t.{column} = {db.mark}",
                  [key], TICKET_FIELDS)  # fmt: skip
    return found[0] if found else None


def metrics_of(db: ProjectionDatabase, ticket_id: str) -> list[Row]:
    """A ticket's SLA metrics, in the order they started."""
    columns = ", ".join(f"m.{c}" for c in METRIC_FIELDS)
    statement = f"SELECT {columns} FROM {db.table(METRICS)} m WHERE m.ticket_id = {db.mark} ORDER BY m.started_at"
    return _rows(db, statement, [ticket_id], METRIC_FIELDS)


def timeline(db: ProjectionDatabase, ticket_id: str) -> list[Row]:
    """A ticket's events in stream order: version, type, when, who, and what else the event says."""
    fields = ("version", "event_type", "occurred_at", "actor", "detail")
    statement = (
        f"SELECT version, event_type, occurred_at, actor, detail FROM {db.table(TIMELINE)} "
        f"WHERE ticket_id = {db.mark} ORDER BY version"
    )
    rows = _rows(db, statement, [ticket_id], fields)
    return [row | {"detail": orjson.loads(row["detail"])} for row in rows]


def breached_now(db: ProjectionDatabase, now: datetime) -> list[Row]:
    """Breaches of unfinished tickets at `now`: recorded ones, and running metrics past due (not yet recorded)."""
    condition = (
        f"t.status IN ({db.marks(len(UNFINISHED))}) AND (m.state = {db.mark} "
        f"OR (m.state = {db.mark} AND m.due_at < {db.mark}))"
    )
    parameters = [*UNFINISHED, MetricState.BREACHED.value, MetricState.RUNNING.value, db.instant(now)]
    rows = _ticket_metrics(db, condition, parameters, "m.due_at")
    return [row | {"recorded": row["state"] == MetricState.BREACHED} for row in rows]


def at_risk_now(db: ProjectionDatabase, now: datetime) -> list[Row]:
    """Running metrics at `now` past their at-risk time but not yet due, soonest due first."""
    condition = f"m.state = {db.mark} AND m.at_risk_at <= {db.mark} AND m.due_at >= {db.mark}"
    parameters = [MetricState.RUNNING.value, db.instant(now), db.instant(now)]
    return _ticket_metrics(db, condition, parameters, "m.due_at")


def deadlines_to_record(db: ProjectionDatabase, now: datetime, limit: int) -> list[Row]:
    """Running metrics at `now` past due (`now > due`), or at risk and not yet flagged: what the watchdog
    reports, earliest due first, at most `limit`."""
    condition = f"m.due_at < {db.mark} OR (m.at_risk_at <= {db.mark} AND m.at_risk_flagged = {db.mark})"
    statement = (
        f"SELECT m.ticket_id, m.metric, m.due_at, m.at_risk_at FROM {db.table(METRICS)} m "
        f"WHERE m.state = {db.mark} AND ({condition}) ORDER BY m.due_at, m.ticket_id, m.metric LIMIT {int(limit)}"
    )
    parameters = [MetricState.RUNNING.value, db.instant(now), db.instant(now), False]
    return _rows(db, statement, parameters, ("ticket_id", "metric", "due_at", "at_risk_at"))


def first_opening(db: ProjectionDatabase) -> datetime | None:
    """When the earliest ticket in the view was opened; None while it holds none."""
    ((earliest,),) = db.query(f"SELECT MIN(opened_at) FROM {db.table(TICKETS)}")
    return db.read_instant(earliest)


def work_queue(db: ProjectionDatabase) -> list[Row]:
    """Open tickets, severity A first, then by the earliest due time of their running metrics (none: last)."""
    next_due = (
        f"(SELECT MIN(m.due_at) FROM {db.table(METRICS)} m WHERE m.ticket_id = t.ticket_id AND m.state = {db.mark})"
    )
    fields = (*TICKET_FIELDS, "next_due")
    # A subquery, because PostgreSQL orders by an output column only by its bare name, not inside an expression.
    statement = (
        f"SELECT {', '.join(fields)} FROM (SELECT {_ticket_columns()}, {next_due} AS next_due "
        f"FROM {db.table(TICKETS)} t WHERE t.status = {db.mark}) t "
        f"ORDER BY {SEVERITY_ORDER}, t.next_due IS NULL, t.next_due, t.opened_at"
    )
    return _rows(db, statement, [MetricState.RUNNING.value, TicketStatus.OPEN.value], fields)


def breach_history(db: ProjectionDatabase) -> list[Row]:
    """Per customer, plan, severity and month (met or breached in): metrics decided, breached, breach rate."""
    fields = ("customer_id", "plan", "severity", "month", "decided", "breached")
    statement = (
        f"SELECT t.customer_id, t.plan, t.severity, m.decided_month, COUNT(*), "
        f"SUM(CASE WHEN m.state = {db.mark} THEN 1 ELSE 0 END) FROM {db.table(METRICS)} m "
        f"JOIN {db.table(TICKETS)} t ON t.ticket_id = m.ticket_id WHERE m.decided_month IS NOT NULL "
        "GROUP BY t.customer_id, t.plan, t.severity, m.decided_month "
        "ORDER BY m.decided_month, t.customer_id, t.plan, t.severity"
    )
    rows = _rows(db, statement, [MetricState.BREACHED.value], fields)
    return [row | {"breached": int(row["breached"]), "breach_rate": _rate(row)} for row in rows]


def _rate(row: Row) -> float:
    return round(int(row["breached"]) / row["decided"], 4)


def _ticket_metrics(db: ProjectionDatabase, condition: str, parameters: list, order: str) -> list[Row]:
    fields = ("ticket_id", "reference", "customer_id", "plan", "severity", "status", *METRIC_FIELDS)
    columns = ", ".join(f"t.{c}" for c in fields[:6]) + ", " + ", ".join(f"m.{c}" for c in METRIC_FIELDS)
    statement = (
        f"SELECT {columns} FROM {db.table(METRICS)} m JOIN {db.table(TICKETS)} t ON t.ticket_id = m.ticket_id "
        f"WHERE {condition} ORDER BY {order}, t.ticket_id, m.metric"
    )
    return _rows(db, statement, parameters, fields)


def _ticket_columns() -> str:
    return ", ".join(f"t.{c}" for c in TICKET_FIELDS)


def _rows(db: ProjectionDatabase, statement: str, parameters: Sequence, fields: Sequence[str]) -> list[Row]:
    return [_row(db, fields, values) for values in db.query(statement, list(parameters))]


def _row(db: ProjectionDatabase, fields: Sequence[str], values: tuple) -> Row:
    row = dict(zip(fields, values, strict=True))
    for name in fields:
        if name.endswith("_at") or name == "next_due":
            row[name] = db.read_instant(row[name])
    if "at_risk_flagged" in row:
        row["at_risk_flagged"] = bool(row["at_risk_flagged"])
    return row


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True
