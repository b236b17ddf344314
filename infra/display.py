"""Showing stored facts to people: instants in the calendar's zone (Europe/Berlin), JSON without floats."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from pydantic import BaseModel

from domain.durations import minutes
from domain.ticket import Ticket


def local(value: Any, zone: ZoneInfo) -> Any:
    """Every aware instant inside `value` (dicts, lists, models) converted to `zone`."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, datetime):
        return value.astimezone(zone)
    if isinstance(value, dict):
        return {key: local(item, zone) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [local(item, zone) for item in value]
    return value


def to_json(value: Any) -> bytes:
    """orjson with decimals as strings (money stays exact) and anything else stringified."""
    return orjson.dumps(value, default=_fallback, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)


def _fallback(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump()
    return str(value)


def ticket_view(ticket: Ticket) -> dict[str, Any]:
    """A ticket's SLA state as an analyst reads it."""
    return {
        "ticket_id": ticket.id,
        "customer_id": ticket.customer_id,
        "status": ticket.status,
        "department": ticket.department,
        "severity": ticket.severity,
        "highest_severity": ticket.highest_severity,
        "plan": ticket.plan,
        "policy_version": ticket.policy_version,
        "opened_at": ticket.opened_at,
        "metrics": [
            {
                "metric": m.name,
                "state": m.state,
                "target_minutes": minutes(m.target),
                "clock": m.clock,
                "due_at": m.due_at,
                "at_risk_at": m.at_risk_at,
                "at_risk_flagged": m.at_risk_flagged,
                "breached_at": m.due_at if m.state == "breached" else None,
                "stopped_at": m.stopped_at,
            }
            for m in ticket.metrics.values()
        ],
    }
