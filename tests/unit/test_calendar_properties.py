"""Properties every clock must keep, for instants drawn over 2025-2028 with weight on DST weeks."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.calendar import BusinessCalendar, Clock, RoundTheClock
from domain.policy import CalendarSpec

BERLIN = BusinessCalendar.from_spec(
    CalendarSpec(
        opening_hours={day: (time(8), time(18)) for day in ("monday", "tuesday", "wednesday", "thursday", "friday")}
    )
)
CLOCKS = st.sampled_from([BERLIN, RoundTheClock()])
FIRST, LAST = datetime(2025, 1, 1, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC)
# The Sundays on which Europe/Berlin changes between CET and CEST (at 01:00 UTC).
DST_CHANGES = [
    datetime(year, month, day, 1, tzinfo=UTC)
    for year, month, day in [(2025, 3, 30), (2025, 10, 26), (2026, 3, 29), (2026, 10, 25)]
    + [(2027, 3, 28), (2027, 10, 31), (2028, 3, 26), (2028, 10, 29)]
]
WEEK = 7 * 24 * 60


def _minutes_after(base: datetime, low: int, high: int) -> st.SearchStrategy[datetime]:
    return st.integers(low, high).map(lambda minutes: base + timedelta(minutes=minutes))


ANY_TIME = _minutes_after(FIRST, 0, int((LAST - FIRST).total_seconds() // 60))
NEAR_DST = st.sampled_from(DST_CHANGES).flatmap(lambda change: _minutes_after(change, -WEEK, WEEK))
INSTANTS = st.one_of(ANY_TIME, NEAR_DST).map(lambda at: at.astimezone(BERLIN.zone))
# Up to six weeks of working time, to the minute.
WORK = st.integers(0, 6 * 5 * 10 * 60).map(lambda minutes: timedelta(minutes=minutes))
# Gaps between instants of one test: long enough for holidays and DST, short enough to stay fast.
GAP = st.integers(0, 10 * WEEK).map(lambda minutes: timedelta(minutes=minutes))
FAST = settings(max_examples=200, deadline=None)


def later(at: datetime, gap: timedelta) -> datetime:
    """`gap` of real time after `at`, in Berlin time: adding to a zoned datetime would move its wall clock."""
    return (at.astimezone(UTC) + gap).astimezone(BERLIN.zone)


def in_order(*instants: datetime) -> list[datetime]:
    """Sorted as instants: aware datetimes of one zone compare by wall time, which the repeated hour breaks."""
    return sorted(instants, key=lambda at: at.astimezone(UTC))


@FAST
@given(clock=CLOCKS, start=INSTANTS, work=WORK)
def test_between_measures_what_add_added(clock: Clock, start: datetime, work: timedelta) -> None:
    assert clock.between(start, clock.add(start, work)) == work


@FAST
@given(clock=CLOCKS, start=INSTANTS, shorter=WORK, longer=WORK)
def test_add_is_monotonic_in_work(clock: Clock, start: datetime, shorter: timedelta, longer: timedelta) -> None:
    shorter, longer = sorted((shorter, longer))
    assert clock.add(start, shorter) <= clock.add(start, longer)


@FAST
@given(clock=CLOCKS, one=INSTANTS, other=INSTANTS, work=WORK)
def test_add_is_monotonic_in_start(clock: Clock, one: datetime, other: datetime, work: timedelta) -> None:
    earlier, later = in_order(one, other)
    assert clock.add(earlier, work) <= clock.add(later, work)


@FAST
@given(clock=CLOCKS, a=INSTANTS, first=GAP, second=GAP)
def test_between_is_additive(clock: Clock, a: datetime, first: timedelta, second: timedelta) -> None:
    b, c = later(a, first), later(a, first + second)
    assert clock.between(a, b) + clock.between(b, c) == clock.between(a, c)


@FAST
@given(start=INSTANTS, work=WORK.filter(bool))
def test_a_due_time_is_open_or_exactly_closing(start: datetime, work: timedelta) -> None:
    due = BERLIN.add(start, work)
    at_closing = due.astimezone(BERLIN.zone).time() == time(18) and BERLIN.is_open(due - timedelta(minutes=1))
    assert BERLIN.is_open(due) or at_closing


@FAST
@given(start=INSTANTS, gap=GAP)
def test_closures_and_counted_time_fill_the_span(start: datetime, gap: timedelta) -> None:
    end = later(start, gap)
    closures = BERLIN.closures(start, end)
    closed = sum((c.end - c.start for c in closures), timedelta(0))
    assert closed + BERLIN.between(start, end) == gap
    assert all(not BERLIN.is_open(c.start) and c.start < c.end for c in closures)
    assert all(one.end <= other.start for one, other in pairwise(closures))


@FAST
@given(start=INSTANTS, work=WORK)
def test_round_the_clock_adds_real_time(start: datetime, work: timedelta) -> None:
    assert RoundTheClock().add(start, work) - start == work
