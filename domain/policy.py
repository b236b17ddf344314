"""The support policy as validated, effective-dated data: plans, severities, calendar, prices, VAT."""

from __future__ import annotations

import tomllib
from bisect import bisect_right
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator

from domain.errors import Forbidden, PolicyError
from domain.frozen import Frozen
from domain.money import Price
from domain.validation import validation_problems

Hours = Annotated[Decimal, Field(gt=0, le=24 * 31)]
Channel = Literal["ticket", "phone"]
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Severity(StrEnum):
    """How badly the customer's business is hit; A is the worst."""

    A = "A"
    B = "B"
    C = "C"

    @property
    def rank(self) -> int:
        """Higher is more severe: C=1, B=2, A=3."""
        return {"C": 1, "B": 2, "A": 3}[self.value]


class ClockKind(StrEnum):
    """Which clock an SLA target is counted on."""

    BUSINESS_HOURS = "business_hours"
    ROUND_THE_CLOCK = "round_the_clock"


class Band(StrEnum):
    """The price band an incident falls in, taken at its opening."""

    BUSINESS_HOURS = "business_hours"
    AFTER_HOURS = "after_hours"


def hours(value: Decimal) -> timedelta:
    """A whole number of minutes: working time is counted to the minute."""
    return timedelta(minutes=int(value * 60))


class CalendarSpec(Frozen):
    """Business hours: a time zone, opening hours per weekday, and public holidays."""

    timezone: str = "Europe/Berlin"
    country: str = "DE"
    subdivision: str | None = None
    opening_hours: dict[str, tuple[time, time]]
    extra_holidays: tuple[date, ...] = ()
    removed_holidays: tuple[date, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("opening_hours")
    @classmethod
    def _weekdays(cls, value: dict[str, tuple[time, time]]) -> dict[str, tuple[time, time]]:
        unknown = sorted(set(value) - set(WEEKDAYS))
        if unknown:
            raise ValueError(f"unknown weekday(s) {unknown}; use {list(WEEKDAYS)}")
        for day, (opens, closes) in value.items():
            if not opens < closes:
                raise ValueError(f"{day}: opening {opens} must be before closing {closes}")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Plan(Frozen):
    """One support plan: its fee, its response target and what it includes."""

    monthly_fee: Price
    first_response_hours: Hours
    included_incidents: int = Field(ge=0)
    callbacks_per_month: int = Field(ge=0)
    departments: frozenset[str]
    phone_hotline: bool = False
    escalation_phone: bool = False
    priority_processing: bool = False
    fix_support: ClockKind = ClockKind.BUSINESS_HOURS

    @cached_property
    def first_response_target(self) -> timedelta:
        return hours(self.first_response_hours)


class SeverityRule(Frozen):
    """The first-reaction target of a severity and the clock it runs on."""

    meaning: str
    first_response_hours: Hours
    clock: ClockKind

    @cached_property
    def first_response_target(self) -> timedelta:
        return hours(self.first_response_hours)


class LanguageRule(Frozen):
    """Whether tickets in a language may be answered around the clock."""

    round_the_clock: bool


class DepartmentRule(Frozen):
    """A ticket department: whether it counts as an incident and whether the hotline takes it."""

    meaning: str
    incident: bool
    phone_hotline: bool = False


class IncidentPrice(Frozen):
    """Per-incident price by time band."""

    business_hours: Price
    after_hours: Price

    def for_band(self, band: Band) -> Decimal:
        return getattr(self, band.value)


class Policy(Frozen):
    """One version of the support policy, in force for tickets opened from `effective_from`."""

    version: str = Field(min_length=1)
    effective_from: date
    currency: str = "EUR"
    vat_rate: Annotated[Decimal, Field(ge=0, lt=1)]
    at_risk_share: Annotated[Decimal, Field(gt=0, lt=1)] = Decimal("0.75")
    statement_closing_day: int = Field(default=5, ge=1, le=28)
    callback_price: Price | None = None
    calendar: CalendarSpec
    plans: dict[str, Plan] = Field(min_length=1)
    severities: dict[Severity, SeverityRule]
    languages: dict[str, LanguageRule] = Field(min_length=1)
    departments: dict[str, DepartmentRule] = Field(min_length=1)
    incident_prices: dict[Severity, IncidentPrice]
    # Command types only some sources may send (the engine's own components), and which; others: anyone.
    command_sources: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> Policy:
        for table in ("severities", "incident_prices"):
            missing = sorted(set(Severity) - set(getattr(self, table)))
            if missing:
                raise ValueError(f"{table}: missing severities {missing}")
        for name, plan in self.plans.items():
            unknown = sorted(plan.departments - set(self.departments))
            if unknown:
                raise ValueError(f"plans.{name}.departments: unknown departments {unknown}")
        return self

    @property
    def starts_at(self) -> datetime:
        """The first instant in force: midnight of `effective_from` in the calendar's zone."""
        return datetime.combine(self.effective_from, time(0), tzinfo=self.calendar.zone)

    def plan(self, name: str) -> Plan:
        try:
            return self.plans[name]
        except KeyError:
            raise PolicyError(f"unknown plan {name!r}; policy {self.version} has {sorted(self.plans)}") from None

    def language(self, code: str) -> LanguageRule:
        try:
            return self.languages[code]
        except KeyError:
            raise PolicyError(
                f"unknown language {code!r}; policy {self.version} has {sorted(self.languages)}"
            ) from None

    def check_source(self, command_type: str, source: str | None) -> None:
        """Refuse a restricted command type from a source the policy does not name for it."""
        allowed = self.command_sources.get(command_type)
        if allowed is not None and source not in allowed:
            shown = "no source" if source is None else f"source {source!r}"
            raise Forbidden(f"{command_type} is accepted only from {', '.join(allowed)}, not from {shown}")

    def department(self, name: str) -> DepartmentRule:
        try:
            return self.departments[name]
        except KeyError:
            raise PolicyError(
                f"unknown department {name!r}; policy {self.version} has {sorted(self.departments)}"
            ) from None


class PolicyBook(Frozen):
    """All policy versions, ordered by date; picks the one in force at an instant."""

    policies: tuple[Policy, ...]

    @field_validator("policies")
    @classmethod
    def _ordered_unique(cls, value: tuple[Policy, ...]) -> tuple[Policy, ...]:
        if not value:
            raise ValueError("no [[policy]] table: at least one version is needed")
        ordered = tuple(sorted(value, key=lambda p: p.effective_from))
        for earlier, later in zip(ordered, ordered[1:], strict=False):
            if earlier.effective_from == later.effective_from:
                raise ValueError(f"two versions take effect on {later.effective_from}")
        if len({p.version for p in ordered}) != len(ordered):
            raise ValueError("policy versions must be unique")
        return ordered

    def in_force(self, at: datetime) -> Policy:
        """The latest version whose first instant is not after `at`."""
        started = bisect_right(self.first_instants, at)
        if not started:
            first = self.policies[0]
            raise PolicyError(f"no policy in force at {at.isoformat()}; the first starts {first.starts_at.isoformat()}")
        return self.policies[started - 1]

    @cached_property
    def first_instants(self) -> tuple[datetime, ...]:
        """Each version's first instant, in order (asked for on every command)."""
        return tuple(p.starts_at for p in self.policies)

    def version(self, version: str) -> Policy:
        for policy in self.policies:
            if policy.version == version:
                return policy
        raise PolicyError(f"unknown policy version {version!r}")

    @property
    def latest(self) -> Policy:
        return self.policies[-1]


def parse_policy(text: str, source: str = "policy") -> PolicyBook:
    """Parse and validate a policy TOML document; errors name the field that is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from None
    versions = data.get("policy", [])
    if not isinstance(versions, list) or set(data) - {"policy"}:
        raise PolicyError(f"{source}: expected only [[policy]] tables, found {sorted(data)}")
    try:
        return PolicyBook.model_validate({"policies": versions})
    except ValidationError as exc:
        raise PolicyError(f"{source}: " + validation_problems(exc, where=_location)) from None


def _location(loc: tuple[int | str, ...]) -> str:
    """('policies', 0, 'plans', 'basic', 'monthly_fee') -> 'policy[0].plans.basic.monthly_fee'."""
    if len(loc) >= 2 and loc[0] == "policies" and isinstance(loc[1], int):
        return ".".join([f"policy[{loc[1]}]", *(str(part) for part in loc[2:])])
    return ".".join(str(part) for part in loc) or "policy"
