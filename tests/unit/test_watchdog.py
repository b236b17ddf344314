"""The watchdog with no broker: a clock set by the test, a fake publisher, the SLA view in an in-memory SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from consumers.watchdog import Watchdog
from domain.commands import CloseMonth, Command
from domain.sla import FIRST_RESPONSE, MetricState
from domain.watch import WATCHDOG_SOURCE
from projections.database import ProjectionDatabase
from projections.sla import queries
from projections.sla.projection import SlaProjection
from tests.unit.builders import TicketStory, at, opened, respond, shipped_book

OPENED = "2026-03-02T10:00+01:00"  # standard plan, severity C: first response due 14:00, at risk from 13:00
AT_RISK = at("2026-03-02T13:00+01:00")
DUE = at("2026-03-02T14:00+01:00")
ONE_SECOND = timedelta(seconds=1)


class Clock:
    """The watchdog's wall clock, set by the test."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Sent:
    """A send the broker acknowledged at once."""

    def get(self, timeout: float | None = None) -> None:
        return None


@dataclass
class FakePublisher:
    """Keeps what it was given to publish, in order, as CommandPublisher would send it."""

    published: list[Command] = field(default_factory=list)

    def publish_all(self, commands: Iterable[Command]) -> list[Sent]:
        commands = list(commands)
        self.published.extend(commands)
        return [Sent() for _ in commands]

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None


@pytest.fixture
def db() -> Iterator[ProjectionDatabase]:
    """The projections' tables in an in-memory SQLite database."""
    database = ProjectionDatabase(lambda: sqlite3.connect(":memory:", isolation_level=None))
    database.create_schema()
    with database.transaction() as cursor:
        SlaProjection(database).create_tables(cursor)
    yield database
    database.close()


def project(db: ProjectionDatabase, story: TicketStory) -> None:
    """The story's events into the view, as the projector would (events already held are repeats)."""
    with db.transaction() as cursor:
        SlaProjection(db).apply(cursor, story.events())


def watchdog(db: ProjectionDatabase, clock: Clock) -> tuple[Watchdog, FakePublisher]:
    publisher = FakePublisher()
    return Watchdog(db, publisher, shipped_book(), now=clock, interval_s=0.0), publisher


def a_ticket_in_the_view(db: ProjectionDatabase) -> TicketStory:
    story = opened(at=OPENED)
    project(db, story)
    return story


def types(commands: Iterable[Command]) -> list[str]:
    return [command.type for command in commands if not isinstance(command, CloseMonth)]


# --- breaches and risks -----------------------------------------------------------------------------------


def test_nothing_is_sent_before_the_at_risk_instant(db):
    a_ticket_in_the_view(db)
    dog, publisher = watchdog(db, Clock(AT_RISK - ONE_SECOND))

    assert dog.look_once() == []
    assert publisher.published == []


def test_the_risk_is_flagged_from_the_at_risk_instant_on_and_once(db):
    story = a_ticket_in_the_view(db)
    clock = Clock(AT_RISK)
    dog, publisher = watchdog(db, clock)

    dog.look_once()
    clock.now += timedelta(seconds=30)
    dog.look_once()  # the view has not caught up yet: nothing is sent again so soon
    flag = publisher.published[0]
    assert story.send(flag).status == "applied"
    project(db, story)
    clock.now = DUE
    dog.look_once()  # the view shows it flagged

    assert types(publisher.published) == ["FlagSlaAtRisk"]
    assert (flag.ticket_id, flag.metric, flag.source, flag.occurred_at) == (story.id, FIRST_RESPONSE, WATCHDOG_SOURCE,
                                                                            AT_RISK)  # fmt: skip
    assert flag.key == str(story.id)


def test_the_due_instant_itself_is_still_in_time(db):
    a_ticket_in_the_view(db)
    dog, publisher = watchdog(db, Clock(DUE))

    dog.look_once()

    assert types(publisher.published) == ["FlagSlaAtRisk"]  # at risk, not breached


def test_a_breach_is_recorded_once_when_the_due_time_has_passed(db):
    story = a_ticket_in_the_view(db)
    clock = Clock(DUE + ONE_SECOND)
    dog, publisher = watchdog(db, clock)

    dog.look_once()
    clock.now += timedelta(seconds=30)
    dog.look_once()  # the view has not caught up yet: nothing is sent again so soon

    assert types(publisher.published) == ["RecordSlaBreach"]
    assert story.send(publisher.published[0]).status == "applied"  # the desk takes it from the watchdog
    project(db, story)
    (metric,) = queries.metrics_of(db, str(story.id))
    assert metric["state"] == MetricState.BREACHED and metric["breached_at"] == DUE
    clock.now += timedelta(hours=2)
    assert types(dog.look_once()) == []  # the view shows it breached: never sent again


def test_the_at_risk_flag_comes_before_the_breach(db):
    story = a_ticket_in_the_view(db)
    clock = Clock(AT_RISK + timedelta(minutes=5))
    dog, publisher = watchdog(db, clock)

    dog.look_once()
    assert story.send(publisher.published[-1]).status == "applied"
    project(db, story)
    clock.now = DUE + timedelta(minutes=1)
    dog.look_once()

    assert types(publisher.published) == ["FlagSlaAtRisk", "RecordSlaBreach"]
    assert story.send(publisher.published[-1]).status == "applied"
    assert [e.type for e in story.events()][-2:] == ["SlaAtRisk", "SlaBreached"]


def test_no_breach_for_a_metric_met_in_time(db):
    story = a_ticket_in_the_view(db)
    assert story.send(respond(story.id, DUE)).status == "applied"  # at the due instant: in time
    project(db, story)
    dog, publisher = watchdog(db, Clock(DUE + timedelta(days=3)))

    dog.look_once()

    assert types(publisher.published) == []


def test_a_command_lost_on_the_way_is_sent_again_after_a_while(db):
    a_ticket_in_the_view(db)
    clock = Clock(DUE + ONE_SECOND)
    dog, publisher = watchdog(db, clock)

    dog.look_once()
    clock.now += dog.resend_after
    dog.look_once()

    assert types(publisher.published) == ["RecordSlaBreach", "RecordSlaBreach"]
    assert publisher.published[0].command_id == publisher.published[1].command_id
    assert dog.stats.resent == 1


def test_two_watchdogs_send_identical_command_ids(db):
    a_ticket_in_the_view(db)
    a_ticket_in_the_view(db)
    first, first_sent = watchdog(db, Clock(DUE + ONE_SECOND))
    second, second_sent = watchdog(db, Clock(DUE + timedelta(minutes=7)))

    first.look_once()
    second.look_once()

    assert len(first_sent.published) == len(second_sent.published) == 2
    assert [c.command_id for c in first_sent.published] == [c.command_id for c in second_sent.published]


def test_a_bounded_run_looks_as_often_as_asked(db):
    a_ticket_in_the_view(db)
    dog, publisher = watchdog(db, Clock(DUE + ONE_SECOND))

    stats = dog.run(max_looks=3, max_seconds=30)

    assert (stats.looks, stats.breaches, stats.risks) == (3, 1, 0)
    assert types(publisher.published) == ["RecordSlaBreach"]


def test_a_run_stops_when_asked(db):
    dog, _ = watchdog(db, Clock(DUE))

    assert dog.run(stop=lambda: True, max_seconds=30).looks == 0


def test_a_look_the_database_fails_is_taken_again_next_time(tmp_path):
    path, broken = tmp_path / "projections.sqlite", []

    def connect() -> sqlite3.Connection:
        if broken:
            raise sqlite3.OperationalError("unable to open database file")
        return sqlite3.connect(path, isolation_level=None)

    database = ProjectionDatabase(connect)
    database.create_schema()
    with database.transaction() as cursor:
        SlaProjection(database).create_tables(cursor)
    project(database, opened(at=OPENED))
    dog, publisher = watchdog(database, Clock(DUE + ONE_SECOND))
    database.close()
    broken.append(True)
    dog.run(max_looks=1, max_seconds=30)
    assert (dog.stats.failed_looks, dog.stats.looks, publisher.published) == (1, 0, [])
    broken.clear()

    dog.run(max_looks=1, max_seconds=30)
    database.close()

    assert types(publisher.published) == ["RecordSlaBreach"]


# --- closing months ---------------------------------------------------------------------------------------

CLOSING_DAY = at("2026-04-05T00:00+02:00")  # March closes at 00:00 on the 5th of April, Berlin time


def closings(commands: Iterable[Command]) -> list[str]:
    return [command.month for command in month_commands(commands)]


def month_commands(commands: Iterable[Command]) -> list[CloseMonth]:
    return [command for command in commands if isinstance(command, CloseMonth)]


def test_no_month_is_closed_before_its_closing_day(db):
    a_ticket_in_the_view(db)
    dog, publisher = watchdog(db, Clock(CLOSING_DAY - ONE_SECOND))

    dog.look_once()

    assert closings(publisher.published) == []


def test_a_month_is_closed_on_its_closing_day_once(db):
    a_ticket_in_the_view(db)
    clock = Clock(CLOSING_DAY)
    dog, publisher = watchdog(db, clock)

    dog.look_once()
    clock.now += timedelta(days=1)
    dog.look_once()

    assert closings(publisher.published) == ["2026-03"]
    (close,) = month_commands(publisher.published)
    assert (close.key, close.source, close.occurred_at) == ("2026-03", WATCHDOG_SOURCE, CLOSING_DAY)
    assert dog.stats.months == 1


def test_each_ended_month_is_closed_in_turn(db):
    a_ticket_in_the_view(db)
    clock = Clock(CLOSING_DAY)
    dog, publisher = watchdog(db, clock)

    dog.look_once()
    clock.now = at("2026-05-04T23:59+02:00")
    dog.look_once()
    clock.now = at("2026-06-05T00:00+02:00")
    dog.look_once()

    assert closings(publisher.published) == ["2026-03", "2026-04", "2026-05"]


def test_a_restarted_watchdog_does_not_close_a_month_again(db):
    a_ticket_in_the_view(db)
    first, _ = watchdog(db, Clock(CLOSING_DAY))
    first.look_once()
    restarted, publisher = watchdog(db, Clock(CLOSING_DAY + timedelta(hours=1)))

    restarted.look_once()

    assert closings(publisher.published) == []


def test_two_watchdogs_close_a_month_with_the_same_command(db):
    a_ticket_in_the_view(db)
    other = ProjectionDatabase(lambda: sqlite3.connect(":memory:", isolation_level=None))
    other.create_schema()
    with other.transaction() as cursor:
        SlaProjection(other).create_tables(cursor)
    project(other, opened(at=OPENED))
    first, first_sent = watchdog(db, Clock(CLOSING_DAY))
    second, second_sent = watchdog(other, Clock(CLOSING_DAY + timedelta(days=2)))

    first.look_once()
    second.look_once()
    other.close()

    assert closings(first_sent.published) == closings(second_sent.published) == ["2026-03"]
    # The same id and the same body: the intake sees a repeat, never a conflicting one.
    assert month_commands(first_sent.published) == month_commands(second_sent.published)


def test_the_desk_takes_the_watchdogs_closing(db):
    story = a_ticket_in_the_view(db)
    dog, publisher = watchdog(db, Clock(CLOSING_DAY))

    dog.look_once()
    (close,) = month_commands(publisher.published)

    assert story.send(close).status == "applied"
    assert story.send(close).status == "unchanged"
