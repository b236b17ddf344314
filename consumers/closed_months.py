"""The months the watchdog has closed: a small table of its own in the projections' database."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from domain.commands import CloseMonth
from projections.database import ProjectionDatabase

TABLE = "watchdog_closed_months"


class ClosedMonths:
    """Months whose CloseMonth the broker acknowledged; a month missing here is closed (again) on the next look."""

    def __init__(self, db: ProjectionDatabase):
        self.db = db

    def create_table(self) -> None:
        with self.db.transaction() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {self.db.table(TABLE)} (month TEXT PRIMARY KEY, "
                f"command_id TEXT NOT NULL, sent_at {self.db.instant_type} NOT NULL)"
            )

    def months(self) -> set[str]:
        return {month for (month,) in self.db.query(f"SELECT month FROM {self.db.table(TABLE)}")}

    def record(self, commands: Iterable[CloseMonth], sent_at: datetime) -> None:
        """Note the months as closed; one noted by another watchdog already stays as it was."""
        rows = [(command.month, str(command.command_id), self.db.instant(sent_at)) for command in commands]
        if not rows:
            return
        with self.db.transaction() as cursor:
            cursor.executemany(
                f"INSERT INTO {self.db.table(TABLE)} (month, command_id, sent_at) VALUES ({self.db.marks(3)}) "
                "ON CONFLICT (month) DO NOTHING",
                rows,
            )
