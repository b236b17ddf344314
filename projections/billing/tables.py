"""The billing tables: statements and their lines for analysts, and the fold's state to go on from, as rows."""

from __future__ import annotations

from typing import Any

from projections.database import ProjectionDatabase

STATEMENTS = "billing_statements"
LINES = "billing_statement_lines"
# The fold's state, in rows a batch reads and writes only when it touches them: incidents by ticket and callbacks by
# event (each with its customer and month), plans by customer, frozen statements and carried adjustments by
# (customer, month).
INCIDENTS = "billing_incidents"
CALLBACKS = "billing_callbacks"
SUBSCRIPTIONS = "billing_subscriptions"
FROZEN = "billing_frozen"
CARRIED = "billing_carried"
CLOSINGS = "billing_closings"
# The state of earlier versions, every customer's whole history in one JSON row: a database that has it needs a
# rebuild (`nettask projections rebuild billing`), which drops it.
LEGACY_CUSTOMERS = "billing_customers"
SEEN = "billing_events"
# (Customer, month) statements that wait for the next refresh, month "*" for all of a customer's (a count of marks:
# a refresh clears only those it saw).
REFRESH = "billing_refresh"
# The closings first: every batch and every refresh locks that row before it touches another billing table, so a
# rebuild that locks the tables in this order (its switch-over) waits for them, or they for it, never both: in any
# other order PostgreSQL found a deadlock between the switch-over and a live projector's batch.
TABLES = (CLOSINGS, STATEMENTS, LINES, INCIDENTS, CALLBACKS, SUBSCRIPTIONS, FROZEN, CARRIED, SEEN, REFRESH)
# The tables of usage rows, found by month (a closing) and by customer and month (a refresh, an adjustment).
BY_MONTH = (INCIDENTS, CALLBACKS)

STATEMENT_COLUMNS = (
    "customer_id", "month", "plan", "policy_version", "currency", "plan_fee", "included_allowance", "included_used",
    "callbacks_used", "callbacks_included", "callbacks_over", "callback_charge", "adjustments", "net", "vat_rate",
    "vat", "gross", "closed", "as_of", "statement",
)  # fmt: skip
LINE_COLUMNS = (
    "customer_id", "month", "line", "kind", "ticket_id", "reference", "occurred_at", "severity", "band", "included",
    "over_allowance", "amount", "adjusted_month", "detail", "event_ids",
)  # fmt: skip


def create_tables(db: ProjectionDatabase, cursor: Any) -> None:
    create_bare_tables(db, cursor)
    create_indexes(db, cursor)


def create_bare_tables(db: ProjectionDatabase, cursor: Any) -> None:
    """The tables with their primary keys only: a rebuild fills them so, and adds the other indexes at the end."""
    for statement in _statements(db):
        cursor.execute(statement)


def create_indexes(db: ProjectionDatabase, cursor: Any) -> None:
    """The indexes the statement lines are found by ticket with, and usage by month and customer, named after the
    live table (names are unique)."""
    cursor.execute(f"CREATE INDEX IF NOT EXISTS {LINES}_ticket_id ON {db.table(LINES)} (ticket_id)")
    for table in BY_MONTH:
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {table}_month ON {db.table(table)} (month, customer_id)")


def _statements(db: ProjectionDatabase) -> list[str]:
    # Money: NUMERIC on PostgreSQL; decimal text on SQLite, whose NUMERIC would turn cents into binary floats.
    instant, money = db.instant_type, "NUMERIC(14, 2)" if db.postgres else "TEXT"
    rate = "NUMERIC(7, 4)" if db.postgres else "TEXT"
    return [
        f"CREATE TABLE IF NOT EXISTS {db.table(STATEMENTS)} (customer_id TEXT NOT NULL, month TEXT NOT NULL, "
        f"plan TEXT NOT NULL, policy_version TEXT NOT NULL, currency TEXT NOT NULL, plan_fee {money} NOT NULL, "
        "included_allowance INTEGER NOT NULL, included_used INTEGER NOT NULL, callbacks_used INTEGER NOT NULL, "
        "callbacks_included INTEGER NOT NULL, callbacks_over INTEGER NOT NULL, "
        f"callback_charge {money} NOT NULL, adjustments {money} NOT NULL, net {money} NOT NULL, "
        f"vat_rate {rate} NOT NULL, vat {money} NOT NULL, gross {money} NOT NULL, closed BOOLEAN NOT NULL, "
        f"as_of {instant} NOT NULL, statement TEXT NOT NULL, PRIMARY KEY (customer_id, month))",
        f"CREATE TABLE IF NOT EXISTS {db.table(LINES)} (customer_id TEXT NOT NULL, month TEXT NOT NULL, "
        "line INTEGER NOT NULL, kind TEXT NOT NULL, ticket_id TEXT NOT NULL, reference TEXT, "
        f"occurred_at {instant}, severity TEXT, band TEXT, included BOOLEAN, over_allowance BOOLEAN, "
        f"amount {money} NOT NULL, adjusted_month TEXT, detail TEXT, event_ids TEXT NOT NULL, "
        "PRIMARY KEY (customer_id, month, line))",
        f"CREATE TABLE IF NOT EXISTS {db.table(INCIDENTS)} (ticket_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
        "month TEXT NOT NULL, state TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {db.table(CALLBACKS)} (event_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
        "month TEXT NOT NULL, state TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {db.table(SUBSCRIPTIONS)} (customer_id TEXT PRIMARY KEY, state TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {db.table(FROZEN)} (customer_id TEXT NOT NULL, month TEXT NOT NULL, "
        "state TEXT NOT NULL, PRIMARY KEY (customer_id, month))",
        f"CREATE TABLE IF NOT EXISTS {db.table(CARRIED)} (customer_id TEXT NOT NULL, month TEXT NOT NULL, "
        "state TEXT NOT NULL, PRIMARY KEY (customer_id, month))",
        f"CREATE TABLE IF NOT EXISTS {db.table(CLOSINGS)} (singleton INTEGER PRIMARY KEY, state TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {db.table(SEEN)} (event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL, "
        f"occurred_at {instant} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {db.table(REFRESH)} (customer_id TEXT NOT NULL, month TEXT NOT NULL, "
        "marks INTEGER NOT NULL, PRIMARY KEY (customer_id, month))",
    ]
