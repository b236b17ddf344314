"""Clocks that SLA targets run on: real elapsed time, and business hours with holidays and time zones."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby
from typing import Protocol
from zoneinfo import ZoneInfo

import holidays

from domain.errors import PolicyError
from domain.policy import WEEKDAYS, Band, CalendarSpec, ClockKind

ZERO = timedelta(0)
CLOSED_HOURS = "closed hours"
WEEKEND = "weekend"
EXTRA_HOLIDAY = "extra holiday"
# Holiday names appear in explanations; without a fixed language they would follow the host's locale.
HOLIDAY_LANGUAGE = "en_US"


def as_utc(at: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is no instant and is refused."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at.isoformat()} has no time zone; instants must be timezone-aware")
    return at.astimezone(UTC)


def _non_negative(work: timedelta) -> timedelta:
    if work < ZERO:
        raise ValueError(f"cannot add negative time {work}")
    return work


class Clock(Protocol):
    """Counts time towards a target: `add` finds a due time, `between` measures time used."""

    kind: ClockKind

    def add(self, start: datetime, work: timedelta) -> datetime: ...

    def between(self, start: datetime, end: datetime) -> timedelta: ...


class RoundTheClock:
    """Real elapsed time, 24/7: across a daylight-saving change 2 h are 2 real hours."""

    kind = ClockKind.ROUND_THE_CLOCK

    def add(self, start: datetime, work: timedelta) -> datetime:
        return as_utc(start) + _non_negative(work)

    def between(self, start: datetime, end: datetime) -> timedelta:
        return max(ZERO, as_utc(end) - as_utc(start))


@dataclass(frozen=True)
class Closure:
    """A closed stretch of time that a business clock skips, and why."""

    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True)
class _Opening:
    """One working day's opening hours as UTC instants."""

    day: date
    opens: datetime
    closes: datetime


class BusinessCalendar:
    """Opening hours per weekday in local wall time, minus public and extra holidays."""

    kind = ClockKind.BUSINESS_HOURS

    def __init__(
        self,
        zone: ZoneInfo,
        opening_hours: dict[int, tuple[time, time]],
        country: str,
        subdivision: str | None = None,
        extra_holidays: frozenset[date] = frozenset(),
        removed_holidays: frozenset[date] = frozenset(),
    ) -> None:
        if not opening_hours:
            # Without a single opening day every search for the next opening would run forever.
            raise PolicyError("calendar: opening_hours must open on at least one weekday")
        self.zone = zone
        self.opening_hours = dict(opening_hours)
        self.country = country
        self.subdivision = subdivision
        self.extra_holidays = extra_holidays
        self.removed_holidays = removed_holidays
        self._language = _holiday_language(country, subdivision)
        self._holidays_by_year: dict[int, dict[date, str]] = {}
        # Every deadline walks the days from its start: each day's opening hours are worked out once.
        self._openings_by_day: dict[date, _Opening | None] = {}

    @classmethod
    def from_spec(cls, spec: CalendarSpec) -> BusinessCalendar:
        return cls(
            zone=spec.zone,
            opening_hours={WEEKDAYS.index(day): hours for day, hours in spec.opening_hours.items()},
            country=spec.country,
            subdivision=spec.subdivision,
            extra_holidays=frozenset(spec.extra_holidays),
            removed_holidays=frozenset(spec.removed_holidays),
        )

    # --- days -------------------------------------------------------------------------------------

    def is_holiday(self, day: date) -> str | None:
        """The holiday's name, or None; removed holidays are working days, extra ones are holidays."""
        if day in self.removed_holidays:
            return None
        name = self._public_holidays(day.year).get(day)
        if name is None and day in self.extra_holidays:
            return EXTRA_HOLIDAY
        return name

    def _public_holidays(self, year: int) -> dict[date, str]:
        if year not in self._holidays_by_year:
            found = holidays.country_holidays(
                self.country, subdiv=self.subdivision, years=year, language=self._language
            )
            self._holidays_by_year[year] = dict(found.items())
        return self._holidays_by_year[year]

    def _day_off(self, day: date) -> str | None:
        """Why a whole local day is closed ("weekend" or "holiday: <name>"), or None on a working day."""
        if day.weekday() not in self.opening_hours:
            return WEEKEND
        name = self.is_holiday(day)
        return None if name is None else f"holiday: {name}"

    def _opening(self, day: date) -> _Opening | None:
        try:
            return self._openings_by_day[day]
        except KeyError:
            opening = self._openings_by_day[day] = self._opening_of(day)
            return opening

    def _opening_of(self, day: date) -> _Opening | None:
        if self._day_off(day) is not None:
            return None
        opens, closes = self.opening_hours[day.weekday()]
        return _Opening(day, self._instant(day, opens), self._instant(day, closes))

    def _instant(self, day: date, wall: time) -> datetime:
        return datetime.combine(day, wall, tzinfo=self.zone).astimezone(UTC)

    def _local_day(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def _openings_from(self, at: datetime) -> Iterator[_Opening]:
        """The working days' opening hours that end after `at`, in order, without end."""
        day = self._local_day(at)
        while True:
            opening = self._opening(day)
            if opening is not None and opening.closes > at:
                yield opening
            day += timedelta(days=1)

    # --- instants ---------------------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        at = as_utc(at)
        opening = self._opening(self._local_day(at))
        return opening is not None and opening.opens <= at < opening.closes

    def next_opening(self, at: datetime) -> datetime:
        """`at` itself when open, else the next opening time."""
        at = as_utc(at)
        return max(at, next(self._openings_from(at)).opens)

    def add(self, start: datetime, work: timedelta) -> datetime:
        """The instant after `work` of opening hours; a deadline at closing time stays at closing time."""
        start, remaining = as_utc(start), _non_negative(work)
        if remaining == ZERO:
            return start
        for opening in self._openings_from(start):
            begin = max(start, opening.opens)
            if remaining <= opening.closes - begin:
                return begin + remaining
            remaining -= opening.closes - begin
        raise AssertionError("unreachable: openings never run out")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Opening hours within [start, end); zero when end is not after start."""
        start, end = as_utc(start), as_utc(end)
        counted = ZERO
        if end <= start:
            return counted
        for opening in self._openings_from(start):
            if opening.opens >= end:
                break
            counted += min(end, opening.closes) - max(start, opening.opens)
        return counted

    def closures(self, start: datetime, end: datetime) -> list[Closure]:
        """The closed stretches within [start, end), each with its reason, in order."""
        start, end = as_utc(start), as_utc(end)
        found: list[Closure] = []
        cursor = start
        for opening in self._openings_from(start):
            if cursor >= end:
                break
            if opening.opens > cursor:
                found += self._explain_gap(cursor, min(opening.opens, end))
            cursor = max(cursor, opening.closes)
        return found

    def _explain_gap(self, start: datetime, end: datetime) -> list[Closure]:
        """Split one closed stretch by the days off inside it; evenings and mornings join their neighbours."""
        days_off = [(day, reason) for day in self._days_touched(start, end) if (reason := self._day_off(day))]
        if not days_off:
            return [Closure(start, end, CLOSED_HOURS)]
        runs = [(reason, [day for day, _ in run]) for reason, run in groupby(days_off, key=lambda d: d[1])]
        cuts = [start] + [self._instant(days[0], time(0)) for _, days in runs[1:]] + [end]
        return [Closure(cuts[i], cuts[i + 1], reason) for i, (reason, _) in enumerate(runs)]

    def _days_touched(self, start: datetime, end: datetime) -> Iterator[date]:
        """The local days that [start, end) covers at least in part."""
        day, last = self._local_day(start), self._local_day(end - timedelta(microseconds=1))
        while day <= last:
            yield day
            day += timedelta(days=1)


def _holiday_language(country: str, subdivision: str | None) -> str | None:
    """English holiday names where the `holidays` package has them; refuses unknown places."""
    try:
        entity = holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError as exc:
        raise PolicyError(f"calendar: {exc}") from None
    return HOLIDAY_LANGUAGE if HOLIDAY_LANGUAGE in entity.supported_languages else entity.default_language


def clock_for(kind: ClockKind, calendar: BusinessCalendar) -> Clock:
    """The clock of a kind: the business calendar itself, or real elapsed time."""
    if kind is ClockKind.BUSINESS_HOURS:
        return calendar
    return RoundTheClock()


def band_at(calendar: BusinessCalendar, at: datetime) -> Band:
    """Business hours from opening (inclusive) to closing (exclusive) on a working day; else after hours."""
    return Band.BUSINESS_HOURS if calendar.is_open(at) else Band.AFTER_HOURS
