"""Billing projection CPU per event, batch and refresh, month by month as a history grows, on a SQLite file.

    python -m bench.billing_history [--months 4] [--events-per-month 5000] [--batch 500]

The bench workload's customers and tickets, repeated a month apart (each month's tickets are new); the events
decided in memory, then folded by `BillingProjection` in batches, each followed by a refresh, as a projector
does when its batches come slower than `NETTASK_BILLING_REFRESH_MS`. No Kafka: the figures are the projection's
own CPU time (`time.process_time`), per event of the batches whose first event falls in the month.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.workload import COMMANDS_PER_TICKET, subscriptions, ticket_commands
from domain.desk import TicketDesk
from domain.money import Month
from domain.policy import parse_policy
from projections.billing.projection import BillingProjection
from projections.database import ProjectionDatabase

POLICY_FILE = Path(__file__).resolve().parents[1] / "domain" / "data" / "policy.toml"
MONTH_APART = timedelta(days=31)


def main() -> None:
    options = _options()
    book = parse_policy(POLICY_FILE.read_text(), str(POLICY_FILE))
    events = _history(book, options.months, options.events_per_month)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "billing.db"
        rows = _fold(book, events, options.batch, path)
        size = path.stat().st_size
    table = Table(title=f"billing projection, {len(events)} events, batches of {options.batch} (CPU us/event)")
    for column in ("month of the batches", "events", "batch", "refresh"):
        table.add_column(column)
    for month, count, batch, refresh in rows:
        table.add_row(month, str(count), f"{batch:.1f}", f"{refresh:.1f}")
    console = Console()
    console.print(table)
    console.print(f"database file at the end: {size / 1e6:.1f} MB")


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=4)
    parser.add_argument("--events-per-month", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    return parser.parse_args()


def _history(book, months: int, per_month: int) -> list:
    """The workload's plans, then its tickets once a month, decided by the engine in memory."""
    desk = TicketDesk(book, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    commands = subscriptions("bench")
    for month in range(months):
        tickets = ticket_commands("bench", max(1, per_month // COMMANDS_PER_TICKET), batch=f"m{month}")
        shift = MONTH_APART * month
        commands += [command.model_copy(update={"occurred_at": command.occurred_at + shift}) for command in tickets]
    for command in commands:
        desk.handle(command)
    return list(desk.recorded_events())


def _fold(book, events: list, batch: int, path: Path) -> list[tuple[str, int, float, float]]:
    """Per month: events, and the batch's and the refresh's CPU seconds per event."""
    connection = sqlite3.connect(path, isolation_level=None)
    db = ProjectionDatabase(lambda: connection)
    projection = BillingProjection(db, book)
    with db.transaction() as cursor:
        projection.create_tables(cursor)
    totals: dict[str, list[float]] = {}
    for start in range(0, len(events), batch):
        part = events[start : start + batch]
        month = str(Month.of(part[0].occurred_at, book.latest.calendar.zone))
        began = time.process_time()
        with db.transaction() as cursor:
            projection.apply(cursor, part)
        applied = time.process_time()
        projection.refresh()
        refreshed = time.process_time()
        total = totals.setdefault(month, [0, 0.0, 0.0])
        total[0] += len(part)
        total[1] += applied - began
        total[2] += refreshed - applied
    connection.close()
    return [(month, int(n), a / n * 1e6, r / n * 1e6) for month, (n, a, r) in totals.items()]


if __name__ == "__main__":
    main()
