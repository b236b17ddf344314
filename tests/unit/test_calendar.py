"""The business calendar and the round-the-clock clock, with explicit expected instants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import pytest

from domain.calendar import BusinessCalendar, Clock, Closure, RoundTheClock, band_at, clock_for
from domain.errors import PolicyError
from domain.policy import Band, CalendarSpec, ClockKind

OFFICE_HOURS = (time(8), time(18))
WORKING_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")


def calendar(**options: object) -> BusinessCalendar:
    """Europe/Berlin, Mon-Fri 08:00-18:00, German nationwide holidays unless `options` say otherwise."""
    spec = CalendarSpec(opening_hours={day: OFFICE_HOURS for day in WORKING_DAYS}, **options)
    return BusinessCalendar.from_spec(spec)


BERLIN = calendar()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


ADDS = [
    ("friday 17:00 + 2h is monday 09:00", "2026-02-06T17:00+01:00", 120, "2026-02-09T09:00+01:00"),
    ("start on saturday", "2026-02-07T10:00+01:00", 60, "2026-02-09T09:00+01:00"),
    ("start at 07:00", "2026-02-10T07:00+01:00", 60, "2026-02-10T09:00+01:00"),
    ("start at 18:00 exactly", "2026-02-10T18:00+01:00", 60, "2026-02-11T09:00+01:00"),
    ("start at 17:59", "2026-02-10T17:59+01:00", 60, "2026-02-11T08:59+01:00"),
    ("deadline exactly at closing", "2026-02-10T16:00+01:00", 120, "2026-02-10T18:00+01:00"),
    ("a whole day ends at closing", "2026-02-10T08:00+01:00", 600, "2026-02-10T18:00+01:00"),
    ("one minute past a whole day", "2026-02-10T08:00+01:00", 601, "2026-02-11T08:01+01:00"),
    ("zero work stays put, even closed", "2026-02-07T10:00+01:00", 0, "2026-02-07T10:00+01:00"),
    ("seconds are kept", "2026-02-10T09:00:30+01:00", 60, "2026-02-10T10:00:30+01:00"),
    ("a week of work", "2026-02-09T08:00+01:00", 50 * 60, "2026-02-13T18:00+01:00"),
    ("a week and an hour", "2026-02-09T08:00+01:00", 51 * 60, "2026-02-16T09:00+01:00"),
    ("four weeks of work", "2026-02-02T08:00+01:00", 200 * 60, "2026-02-27T18:00+01:00"),
    ("offset of the start does not matter", "2026-02-06T16:00Z", 120, "2026-02-09T09:00+01:00"),
    # 2026-03-29 (Sunday): clocks go from 02:00 CET to 03:00 CEST.
    ("friday before spring DST into monday", "2026-03-27T16:00+01:00", 240, "2026-03-30T10:00+02:00"),
    ("friday 17:00 before spring DST", "2026-03-27T17:00+01:00", 120, "2026-03-30T09:00+02:00"),
    ("on the spring DST sunday", "2026-03-29T01:30+01:00", 60, "2026-03-30T09:00+02:00"),
    ("monday after spring DST is 10 hours", "2026-03-30T08:00+02:00", 600, "2026-03-30T18:00+02:00"),
    # 2026-10-25 (Sunday): clocks go from 03:00 CEST back to 02:00 CET.
    ("friday before autumn DST", "2026-10-23T17:00+02:00", 120, "2026-10-26T09:00+01:00"),
    ("monday after autumn DST is 10 hours", "2026-10-26T08:00+01:00", 600, "2026-10-26T18:00+01:00"),
    ("good friday and easter monday", "2026-04-02T14:00+02:00", 480, "2026-04-07T12:00+02:00"),
    ("labour day on a friday", "2026-04-30T17:00+02:00", 120, "2026-05-04T09:00+02:00"),
    ("unity day on a saturday skips nothing more", "2026-10-02T17:00+02:00", 120, "2026-10-05T09:00+02:00"),
    ("christmas eve is a working day", "2026-12-24T17:00+01:00", 120, "2026-12-28T09:00+01:00"),
    ("new year 2027", "2026-12-31T17:00+01:00", 120, "2027-01-04T09:00+01:00"),
    ("epiphany is no nationwide holiday", "2026-01-05T17:00+01:00", 120, "2026-01-06T09:00+01:00"),
]


@pytest.mark.parametrize(("start", "minutes", "due"), [case[1:] for case in ADDS], ids=[c[0] for c in ADDS])
def test_add_counts_opening_hours(start: str, minutes: int, due: str) -> None:
    result = BERLIN.add(at(start), timedelta(minutes=minutes))
    assert result == at(due)
    assert result.tzinfo is UTC


@pytest.mark.parametrize(("start", "minutes", "due"), [case[1:] for case in ADDS], ids=[c[0] for c in ADDS])
def test_between_undoes_add(start: str, minutes: int, due: str) -> None:
    assert BERLIN.between(at(start), at(due)) == timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("options", "start", "due"),
    [
        ({"subdivision": "BY"}, "2026-01-05T17:00+01:00", "2026-01-07T09:00+01:00"),
        ({"extra_holidays": (date(2026, 2, 11),)}, "2026-02-10T17:00+01:00", "2026-02-12T09:00+01:00"),
        ({"removed_holidays": (date(2026, 5, 1),)}, "2026-04-30T17:00+02:00", "2026-05-01T09:00+02:00"),
    ],
    ids=["epiphany in bavaria", "extra holiday", "removed holiday"],
)
def test_configured_holidays(options: dict[str, object], start: str, due: str) -> None:
    assert calendar(**options).add(at(start), timedelta(hours=2)) == at(due)


@pytest.mark.parametrize(
    ("cal", "day", "name"),
    [
        (BERLIN, date(2026, 4, 3), "Good Friday"),
        (BERLIN, date(2026, 4, 6), "Easter Monday"),
        (BERLIN, date(2026, 5, 1), "Labor Day"),
        (BERLIN, date(2026, 10, 3), "German Unity Day"),
        (BERLIN, date(2026, 12, 25), "Christmas Day"),
        (BERLIN, date(2026, 12, 26), "Second Day of Christmas"),
        (BERLIN, date(2027, 1, 1), "New Year's Day"),
        (BERLIN, date(2026, 12, 24), None),
        (BERLIN, date(2026, 1, 6), None),
        (calendar(subdivision="BY"), date(2026, 1, 6), "Epiphany"),
        (calendar(extra_holidays=(date(2026, 2, 11),)), date(2026, 2, 11), "extra holiday"),
        (calendar(removed_holidays=(date(2026, 5, 1),)), date(2026, 5, 1), None),
    ],
)
def test_is_holiday_names_the_holiday(cal: BusinessCalendar, day: date, name: str | None) -> None:
    assert cal.is_holiday(day) == name


@pytest.mark.parametrize(
    ("start", "end", "minutes"),
    [
        ("2026-02-06T17:00+01:00", "2026-02-09T09:00+01:00", 120),
        ("2026-02-06T12:00+01:00", "2026-02-09T12:00+01:00", 600),
        ("2026-04-02T14:00+02:00", "2026-04-07T12:00+02:00", 480),
        ("2026-12-24T08:00+01:00", "2026-12-28T18:00+01:00", 1200),
        ("2026-02-09T07:00+01:00", "2026-02-09T19:00+01:00", 600),
        ("2026-02-07T00:00+01:00", "2026-02-08T23:59+01:00", 0),
        ("2026-02-09T12:00+01:00", "2026-02-09T12:00+01:00", 0),
        ("2026-02-09T12:00+01:00", "2026-02-09T10:00+01:00", 0),
    ],
    ids=[
        "weekend",
        "weekend from noon",
        "easter",
        "christmas",
        "one full day",
        "inside a weekend",
        "empty",
        "reversed",
    ],
)
def test_between(start: str, end: str, minutes: int) -> None:
    assert BERLIN.between(at(start), at(end)) == timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("instant", "band"),
    [
        ("2026-02-09T08:00+01:00", Band.BUSINESS_HOURS),
        ("2026-02-09T07:59+01:00", Band.AFTER_HOURS),
        ("2026-02-09T17:59+01:00", Band.BUSINESS_HOURS),
        ("2026-02-09T18:00+01:00", Band.AFTER_HOURS),
        ("2026-02-07T12:00+01:00", Band.AFTER_HOURS),
        ("2026-04-03T12:00+02:00", Band.AFTER_HOURS),
        ("2026-02-09T07:00Z", Band.BUSINESS_HOURS),
    ],
    ids=["08:00", "07:59", "17:59", "18:00", "saturday", "good friday", "utc offset"],
)
def test_band_at(instant: str, band: Band) -> None:
    assert band_at(BERLIN, at(instant)) == band
    assert BERLIN.is_open(at(instant)) is (band is Band.BUSINESS_HOURS)


@pytest.mark.parametrize(
    ("instant", "opening"),
    [
        ("2026-02-09T10:00+01:00", "2026-02-09T10:00+01:00"),
        ("2026-02-09T18:00+01:00", "2026-02-10T08:00+01:00"),
        ("2026-02-07T12:00+01:00", "2026-02-09T08:00+01:00"),
        ("2026-04-02T18:30+02:00", "2026-04-07T08:00+02:00"),
        ("2026-03-28T12:00+01:00", "2026-03-30T08:00+02:00"),
    ],
    ids=["open", "at closing", "saturday", "easter", "over spring DST"],
)
def test_next_opening(instant: str, opening: str) -> None:
    assert BERLIN.next_opening(at(instant)) == at(opening)


def closure(start: str, end: str, reason: str) -> Closure:
    return Closure(at(start).astimezone(UTC), at(end).astimezone(UTC), reason)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2026-02-09T09:00+01:00", "2026-02-09T17:00+01:00", []),
        (
            "2026-02-09T17:00+01:00",
            "2026-02-10T09:00+01:00",
            [closure("2026-02-09T18:00+01:00", "2026-02-10T08:00+01:00", "closed hours")],
        ),
        (
            "2026-02-06T17:00+01:00",
            "2026-02-09T09:00+01:00",
            [closure("2026-02-06T18:00+01:00", "2026-02-09T08:00+01:00", "weekend")],
        ),
        (
            "2026-02-07T10:00+01:00",
            "2026-02-07T12:00+01:00",
            [closure("2026-02-07T10:00+01:00", "2026-02-07T12:00+01:00", "weekend")],
        ),
        (
            "2026-04-02T14:00+02:00",
            "2026-04-07T12:00+02:00",
            [
                closure("2026-04-02T18:00+02:00", "2026-04-04T00:00+02:00", "holiday: Good Friday"),
                closure("2026-04-04T00:00+02:00", "2026-04-06T00:00+02:00", "weekend"),
                closure("2026-04-06T00:00+02:00", "2026-04-07T08:00+02:00", "holiday: Easter Monday"),
            ],
        ),
        (
            "2026-12-24T17:00+01:00",
            "2026-12-28T09:00+01:00",
            [
                closure("2026-12-24T18:00+01:00", "2026-12-26T00:00+01:00", "holiday: Christmas Day"),
                closure("2026-12-26T00:00+01:00", "2026-12-28T08:00+01:00", "weekend"),
            ],
        ),
        (
            "2026-10-02T17:00+02:00",
            "2026-10-05T09:00+02:00",
            [closure("2026-10-02T18:00+02:00", "2026-10-05T08:00+02:00", "weekend")],
        ),
        (
            "2026-02-09T07:00+01:00",
            "2026-02-09T20:00+01:00",
            [
                closure("2026-02-09T07:00+01:00", "2026-02-09T08:00+01:00", "closed hours"),
                closure("2026-02-09T18:00+01:00", "2026-02-09T20:00+01:00", "closed hours"),
            ],
        ),
    ],
    ids=["none", "overnight", "weekend", "inside a weekend", "easter", "christmas", "unity day", "both ends"],
)
def test_closures_explain_what_was_skipped(start: str, end: str, expected: list[Closure]) -> None:
    assert BERLIN.closures(at(start), at(end)) == expected


def test_closures_and_counted_time_fill_the_span() -> None:
    start, end = at("2026-03-26T10:00+01:00"), at("2026-04-08T10:00+02:00")
    closed = sum((c.end - c.start for c in BERLIN.closures(start, end)), timedelta(0))
    assert closed + BERLIN.between(start, end) == end - start


ROUND_THE_CLOCK = [
    ("plain", "2026-02-07T03:00+01:00", 120, "2026-02-07T05:00+01:00"),
    ("spring DST: 01:30 + 2h real", "2026-03-29T01:30+01:00", 120, "2026-03-29T04:30+02:00"),
    (
        "autumn DST: 00:30 + 2h is 1st 02:30",
        "2026-10-25T00:30+02:00",
        120,
        "2026-10-25T02:30+02:00",
    ),
    (
        "autumn DST: 01:30 + 2h is 2nd 02:30",
        "2026-10-25T01:30+02:00",
        120,
        "2026-10-25T02:30+01:00",
    ),
    ("autumn DST: the repeated hour counts", "2026-10-25T02:30+02:00", 60, "2026-10-25T02:30+01:00"),
]


@pytest.mark.parametrize(
    ("start", "minutes", "due"), [c[1:] for c in ROUND_THE_CLOCK], ids=[c[0] for c in ROUND_THE_CLOCK]
)
def test_round_the_clock_counts_real_time(start: str, minutes: int, due: str) -> None:
    clock = RoundTheClock()
    result = clock.add(at(start), timedelta(minutes=minutes))
    assert result == at(due)
    assert result.tzinfo is UTC
    assert clock.between(at(start), result) == timedelta(minutes=minutes)


def test_round_the_clock_between_is_real_time_across_dst() -> None:
    clock = RoundTheClock()
    assert clock.between(at("2026-10-25T00:00+02:00"), at("2026-10-25T03:00+01:00")) == timedelta(hours=4)
    assert clock.between(at("2026-03-29T00:00+01:00"), at("2026-03-29T03:00+02:00")) == timedelta(hours=2)
    assert clock.between(at("2026-03-29T05:00+02:00"), at("2026-03-29T01:00+01:00")) == timedelta(0)


def test_clock_for_picks_the_clock_of_a_kind() -> None:
    assert clock_for(ClockKind.BUSINESS_HOURS, BERLIN) is BERLIN
    assert clock_for(ClockKind.ROUND_THE_CLOCK, BERLIN).kind is ClockKind.ROUND_THE_CLOCK
    assert BERLIN.kind is ClockKind.BUSINESS_HOURS


NAIVE = datetime(2026, 2, 9, 10, 0)
AWARE = at("2026-02-09T10:00+01:00")


@pytest.mark.parametrize(
    "call",
    [
        lambda: BERLIN.add(NAIVE, timedelta(hours=1)),
        lambda: BERLIN.between(NAIVE, AWARE),
        lambda: BERLIN.between(AWARE, NAIVE),
        lambda: BERLIN.is_open(NAIVE),
        lambda: BERLIN.next_opening(NAIVE),
        lambda: BERLIN.closures(NAIVE, AWARE),
        lambda: band_at(BERLIN, NAIVE),
        lambda: RoundTheClock().add(NAIVE, timedelta(hours=1)),
        lambda: RoundTheClock().between(AWARE, NAIVE),
    ],
    ids=[
        "add",
        "between start",
        "between end",
        "is_open",
        "next_opening",
        "closures",
        "band_at",
        "24/7 add",
        "24/7",
    ],
)
def test_naive_datetimes_are_refused(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        call()


@pytest.mark.parametrize("clock", [BERLIN, RoundTheClock()], ids=["business", "24/7"])
def test_negative_work_is_refused(clock: Clock) -> None:
    with pytest.raises(ValueError, match="negative"):
        clock.add(AWARE, timedelta(minutes=-1))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"opening_hours": {}}, "at least one weekday"),
        ({"subdivision": "XX"}, "subdivision"),
        ({"country": "ZZ"}, "ZZ"),
    ],
    ids=["never open", "unknown state", "unknown country"],
)
def test_unusable_calendars_are_refused(options: dict[str, object], message: str) -> None:
    spec = {"opening_hours": {day: OFFICE_HOURS for day in WORKING_DAYS}} | options
    with pytest.raises(PolicyError, match=message):
        BusinessCalendar.from_spec(CalendarSpec(**spec))


def test_holidays_are_looked_up_once_per_year() -> None:
    cal = calendar()
    cal.add(at("2026-12-30T08:00+01:00"), timedelta(hours=40))
    assert set(cal._holidays_by_year) == {2026, 2027}
