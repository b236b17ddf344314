"""SQL views for analysts over the SLA and billing tables, the same columns on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from projections.database import ProjectionDatabase

VIEWS = ("sla_breached", "sla_at_risk", "sla_remaining", "breach_rate_by_month", "statement_lines")


def create_views(db: ProjectionDatabase, cursor: Any) -> None:
    """Replace every view: a new release may change one, and views hold no data."""
    for name, body in _bodies(db).items():
        if db.postgres:
            cursor.execute(f"CREATE OR REPLACE VIEW {db.table(name)} AS {body}")
        else:
            cursor.execute(f"DROP VIEW IF EXISTS {name}")
            cursor.execute(f"CREATE VIEW {name} AS {body}")


def drop_views(db: ProjectionDatabase, cursor: Any) -> bool:
    """Drop the views (a table they read is about to be replaced); says whether there were any to create again."""
    if db.postgres:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.views WHERE table_schema = %s AND table_name = ANY(%s)",
            (db.schema or "public", list(VIEWS)),
        )
    else:
        cursor.execute(f"SELECT COUNT(*) FROM sqlite_master WHERE type = 'view' AND name IN ({db.marks(len(VIEWS))})",
                       VIEWS)  # fmt: skip
    existed = cursor.fetchone()[0] > 0
    for name in VIEWS:
        cursor.execute(f"DROP VIEW IF EXISTS {db.table(name)}")
    return existed


def _now(db: ProjectionDatabase) -> str:
    """CURRENT_TIMESTAMP as the instants are stored: TIMESTAMPTZ, or SQLite's UTC ISO text with microseconds."""
    return "CURRENT_TIMESTAMP" if db.postgres else "strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')"


def _minutes(db: ProjectionDatabase, start: str, end: str) -> str:
    """Whole real minutes from `start` to `end` (negative when `end` is earlier)."""
    if db.postgres:
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({end} - {start})) / 60) AS INTEGER)"
    return f"CAST(FLOOR((julianday({end}) - julianday({start})) * 1440) AS INTEGER)"


def _bodies(db: ProjectionDatabase) -> dict[str, str]:
    t, now = db.table, _now(db)
    metrics = f"{t('sla_metrics')} m JOIN {t('sla_tickets')} k ON k.ticket_id = m.ticket_id"
    ticket = "k.ticket_id, k.reference, k.customer_id, k.plan, k.severity, k.status, m.metric"
    return {
        "sla_breached": f"SELECT {ticket}, m.due_at, m.breached_at, m.answered_at, m.minutes_late, "
        f"m.policy_version FROM {metrics} WHERE m.state = 'breached'",
        "sla_at_risk": f"SELECT {ticket}, m.at_risk_at, m.due_at, {_minutes(db, now, 'm.due_at')} AS minutes_left, "
        f"m.at_risk_flagged FROM {metrics} WHERE m.state = 'running' AND m.at_risk_at <= {now} "
        f"AND m.due_at >= {now}",
        "sla_remaining": f"SELECT {ticket}, m.clock, m.due_at, {_minutes(db, now, 'm.due_at')} AS remaining_minutes "
        f"FROM {metrics} WHERE m.state = 'running'",
        "breach_rate_by_month": "SELECT decided_month AS month, COUNT(*) AS metrics, "
        "SUM(CASE WHEN state = 'breached' THEN 1 ELSE 0 END) AS breached, "
        "ROUND(AVG(CASE WHEN state = 'breached' THEN 1.0 ELSE 0 END), 4) AS breach_rate "
        f"FROM {t('sla_metrics')} WHERE decided_month IS NOT NULL GROUP BY decided_month",
        "statement_lines": "SELECT s.customer_id, s.month, s.plan, s.closed, l.line, l.kind, l.ticket_id, "
        "l.reference, l.occurred_at, l.severity, l.band, l.included, l.over_allowance, l.amount, l.adjusted_month, "
        f"l.detail, l.event_ids FROM {t('billing_statement_lines')} l JOIN {t('billing_statements')} s "
        "ON s.customer_id = l.customer_id AND s.month = l.month",
    }
