"""The SLA view's tables: tickets, their SLA metrics and their timeline, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from projections.database import OnConflict, ProjectionDatabase

TICKETS = "sla_tickets"
METRICS = "sla_metrics"
TIMELINE = "sla_ticket_events"

TICKET_COLUMNS = (
    "ticket_id", "reference", "source", "customer_id", "plan", "department", "channel", "language", "severity",
    "status", "opened_at", "resolved_at", "version", "state",
)  # fmt: skip
METRIC_COLUMNS = (
    "ticket_id", "metric", "target_minutes", "clock", "started_at", "due_at", "at_risk_at", "at_risk_flagged",
    "state", "met_at", "breached_at", "answered_at", "minutes_late", "policy_version", "decided_month",
)  # fmt: skip
TIMELINE_COLUMNS = ("ticket_id", "version", "event_id", "event_type", "occurred_at", "actor", "detail")


TABLES = (TICKETS, METRICS, TIMELINE)


def create_tables(db: ProjectionDatabase, cursor: Any) -> None:
    create_bare_tables(db, cursor)
    create_indexes(db, cursor)


def create_bare_tables(db: ProjectionDatabase, cursor: Any) -> None:
    """The tables with their primary keys only: a rebuild fills them so, and adds the other indexes at the end."""
    instant = db.instant_type
    for statement in (
        f"CREATE TABLE IF NOT EXISTS {db.table(TICKETS)} (ticket_id TEXT PRIMARY KEY, reference TEXT NOT NULL, "
        "source TEXT NOT NULL, customer_id TEXT NOT NULL, plan TEXT NOT NULL, department TEXT NOT NULL, "
        "channel TEXT NOT NULL, language TEXT NOT NULL, severity TEXT NOT NULL, status TEXT NOT NULL, "
        f"opened_at {instant} NOT NULL, resolved_at {instant}, version INTEGER NOT NULL, state TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {db.table(METRICS)} (ticket_id TEXT NOT NULL, metric TEXT NOT NULL, "
        f"target_minutes INTEGER NOT NULL, clock TEXT NOT NULL, started_at {instant} NOT NULL, due_at {instant}, "
        f"at_risk_at {instant}, at_risk_flagged BOOLEAN NOT NULL, state TEXT NOT NULL, met_at {instant}, "
        f"breached_at {instant}, answered_at {instant}, minutes_late INTEGER, policy_version TEXT NOT NULL, "
        "decided_month TEXT, PRIMARY KEY (ticket_id, metric))",
        f"CREATE TABLE IF NOT EXISTS {db.table(TIMELINE)} (ticket_id TEXT NOT NULL, version INTEGER NOT NULL, "
        f"event_id TEXT NOT NULL, event_type TEXT NOT NULL, occurred_at {instant} NOT NULL, actor TEXT NOT NULL, "
        "detail TEXT NOT NULL, PRIMARY KEY (ticket_id, version))",
    ):
        cursor.execute(statement)


def create_indexes(db: ProjectionDatabase, cursor: Any) -> None:
    """The indexes the queries use, named after the live tables (index names are unique per schema or file)."""
    for statement in (
        _index(db, TICKETS, "reference"),
        _index(db, TICKETS, "customer_id"),
        _index(db, METRICS, "state", "due_at"),
    ):
        cursor.execute(statement)


def _index(db: ProjectionDatabase, table: str, *columns: str) -> str:
    return f"CREATE INDEX IF NOT EXISTS {table}_{'_'.join(columns)} ON {db.table(table)} ({', '.join(columns)})"


def upsert(db: ProjectionDatabase, table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    """INSERT of a whole row that replaces the row of the same key: rows are always written whole."""
    return db.insert(table, columns, key, OnConflict.REPLACE)


def insert_new(db: ProjectionDatabase, table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    return db.insert(table, columns, key, OnConflict.KEEP)
