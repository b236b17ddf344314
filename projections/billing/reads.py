"""Statements read back from the billing tables, as the projector last wrote them."""

from __future__ import annotations

from datetime import datetime

from domain.money import Month
from domain.statement import Statement
from projections.billing import tables
from projections.billing.state import CLOSINGS
from projections.database import ProjectionDatabase


def stored_statement(db: ProjectionDatabase, customer_id: str, month: Month) -> Statement | None:
    found = _read(db, f"customer_id = {db.mark} AND month = {db.mark}", (customer_id, str(month)))
    return found[0] if found else None


def stored_statements(db: ProjectionDatabase, month: Month) -> list[Statement]:
    """Every customer's statement of the month, by customer id."""
    return _read(db, f"month = {db.mark}", (str(month),))


def has_statements(db: ProjectionDatabase, customer_id: str) -> bool:
    rows = db.query(f"SELECT 1 FROM {db.table(tables.STATEMENTS)} WHERE customer_id = {db.mark}", (customer_id,))
    return bool(rows)


def projected_until(db: ProjectionDatabase) -> datetime | None:
    """The fold's clock: the latest instant an event it folded happened at."""
    rows = db.query(f"SELECT state FROM {db.table(tables.CLOSINGS)} WHERE singleton = 1")
    return CLOSINGS.validate_json(rows[0][0]).clock if rows else None


def _read(db: ProjectionDatabase, where: str, parameters: tuple) -> list[Statement]:
    """Open statements say they are as of the fold's clock: a customer no later event touched is unchanged."""
    select = f"SELECT statement FROM {db.table(tables.STATEMENTS)} WHERE {where} ORDER BY customer_id"
    rows = db.query(select, parameters)
    clock = projected_until(db)
    found = [Statement.model_validate_json(row[0]) for row in rows]
    return [s if s.closed or clock is None else s.model_copy(update={"as_of": max(s.as_of, clock)}) for s in found]
