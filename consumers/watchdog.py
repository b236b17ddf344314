"""The watchdog: the only component that reads the wall clock; passed deadlines become commands on the topic."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from consumers.closed_months import ClosedMonths
from domain.commands import CloseMonth, Command, FlagSlaAtRisk, RecordSlaBreach
from domain.policy import PolicyBook
from domain.watch import close_month_command, months_to_close, watch_command
from projections.database import ProjectionDatabase
from projections.sla import queries

log = logging.getLogger(__name__)
# The intake, relay and projector bring a recorded breach back to the view within seconds; a command the view
# still does not show after this long was lost on the way, and is sent again (the intake drops a repeat).
RESEND_AFTER = timedelta(minutes=1)
# Metric commands one look sends at most: a first start over a long backlog still ends each look quickly.
MAX_COMMANDS_PER_LOOK = 1000
# How long a look waits for the broker to acknowledge its commands before the component fails (and restarts).
SEND_TIMEOUT_S = 30.0
# How often a sleeping watchdog looks at its stop flag: a stop is noticed at most this late.
STOP_CHECK_S = 0.1


class Publisher(Protocol):
    """What the watchdog needs of producers.client.CommandPublisher."""

    def publish_all(self, commands: Iterable[Command]) -> list[Any]: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class WatchdogStats:
    looks: int = 0
    breaches: int = 0
    risks: int = 0
    months: int = 0
    resent: int = 0
    failed_looks: int = 0


class Watchdog:
    """Looks every `interval_s` seconds at the SLA view and the calendar, and publishes what is due by `now()`."""

    def __init__(
        self,
        db: ProjectionDatabase,
        publisher: Publisher,
        book: PolicyBook,
        *,
        now: Clock = wall_clock,
        interval_s: float = 5.0,
        resend_after: timedelta = RESEND_AFTER,
    ):
        self.db = db
        self.publisher = publisher
        self.book = book
        self.now = now
        self.interval_s = interval_s
        self.resend_after = resend_after
        self.closed_months = ClosedMonths(db)
        self.closed_months.create_table()
        self.stats = WatchdogStats()
        # Metric commands sent and when (by `now()`), until the view shows them recorded.
        self._sent: dict[UUID, datetime] = {}

    def __enter__(self) -> Watchdog:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def run(
        self,
        *,
        stop: Callable[[], bool] = lambda: False,
        max_seconds: float | None = None,
        max_looks: int | None = None,
    ) -> WatchdogStats:
        """Look, then wait `interval_s`, until `stop()`, `max_seconds` passed or `max_looks` looks were tried.

        A look the projections' database fails is logged and taken again next time; a failed send raises.
        """
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        taken = 0
        while not stop() and not _past(deadline) and (max_looks is None or taken < max_looks):
            self._look()
            taken += 1
            _pause(self.interval_s, stop, deadline)
        return self.stats

    def _look(self) -> None:
        try:
            self.look_once()
        except self.db.errors as error:
            # Like the projector, ride out the database: nothing was noted, so the next look does it all again.
            self.stats.failed_looks += 1
            log.error("watchdog: projections database unavailable, looking again in %.1f s: %s", self.interval_s, error)

    def look_once(self) -> list[Command]:
        """One look, in four steps; returns the commands it published.

        1. Read the clock once: every decision of this look is taken at that instant.
        2. Ask the SLA view for running metrics past due, or at risk and not yet flagged; leave out those sent
           less than `resend_after` ago (the view has not caught up with them yet).
        3. Find the months whose closing day has come since the first opening in the view, less those recorded.
        4. Publish them all and wait for every acknowledgement; then note the months and the metric commands as
           sent. A crash before that sends them again on the next look: the intake drops the repeats.
        """
        now = self.now()
        metric_commands = self._metric_commands(now)
        month_commands = self._month_commands(now)
        self._publish([*metric_commands, *month_commands])
        self.closed_months.record(month_commands, now)
        self._note_sent(metric_commands, now)
        self.stats.months += len(month_commands)
        self.stats.looks += 1
        return [*metric_commands, *month_commands]

    def close(self) -> None:
        try:
            self.publisher.close(timeout=SEND_TIMEOUT_S)
        finally:
            self.db.close()

    def _metric_commands(self, now: datetime) -> list[RecordSlaBreach | FlagSlaAtRisk]:
        rows = queries.deadlines_to_record(self.db, now, MAX_COMMANDS_PER_LOOK)
        commands = [_metric_command(row, now) for row in rows]
        # Commands the view no longer lists are recorded (or moot): forget them, keep the rest.
        self._sent = {c.command_id: self._sent[c.command_id] for c in commands if c.command_id in self._sent}
        return [command for command in commands if self._due_to_send(command, now)]

    def _due_to_send(self, command: Command, now: datetime) -> bool:
        sent_at = self._sent.get(command.command_id)
        if sent_at is None:
            return True
        if now - sent_at < self.resend_after:
            return False
        log.warning("watchdog: %s %s not in the view after %s; sending it again", command.type,
                    command.command_id, self.resend_after)  # fmt: skip
        self.stats.resent += 1
        return True

    def _month_commands(self, now: datetime) -> list[CloseMonth]:
        first = queries.first_opening(self.db)
        if first is None:
            return []
        closed = self.closed_months.months()
        due = [month for month in months_to_close(self.book, first, now) if str(month) not in closed]
        return [close_month_command(self.book, month) for month in due]

    def _publish(self, commands: Sequence[Command]) -> None:
        if not commands:
            return
        sends = self.publisher.publish_all(commands)
        self.publisher.flush(timeout=SEND_TIMEOUT_S)
        for send in sends:
            send.get(timeout=SEND_TIMEOUT_S)  # a failed send raises: nothing is noted, the next look sends again

    def _note_sent(self, commands: Sequence[RecordSlaBreach | FlagSlaAtRisk], now: datetime) -> None:
        for command in commands:
            self._sent[command.command_id] = now
        self.stats.breaches += sum(isinstance(c, RecordSlaBreach) for c in commands)
        self.stats.risks += sum(isinstance(c, FlagSlaAtRisk) for c in commands)


def _metric_command(row: queries.Row, now: datetime) -> RecordSlaBreach | FlagSlaAtRisk:
    # Breached only at instants after the due time; before that, the row is listed for its risk.
    kind = RecordSlaBreach if row["due_at"] is not None and row["due_at"] < now else FlagSlaAtRisk
    return watch_command(kind, UUID(row["ticket_id"]), row["metric"], now)


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _pause(seconds: float, stop: Callable[[], bool], deadline: float | None) -> None:
    """Sleep `seconds`, in short naps, waking early at a stop or the deadline."""
    until = time.monotonic() + seconds
    for _ in range(int(seconds / STOP_CHECK_S) + 1):
        if stop() or _past(deadline) or time.monotonic() >= until:
            return
        time.sleep(min(STOP_CHECK_S, max(0.0, until - time.monotonic())))
