"""First-response targets: which target and which clock a ticket's plan, severity and language give."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from domain.calendar import BusinessCalendar, clock_for
from domain.errors import PolicyError
from domain.policy import CalendarSpec, ClockKind, Policy, Severity


def severity_of(value: str) -> Severity:
    """A severity from its letter; anything else is refused naming the choices."""
    try:
        return Severity(value)
    except ValueError:
        raise PolicyError(f"unknown severity {value!r}; use one of {[s.value for s in Severity]}") from None


def first_response_target(
    policy: Policy, plan_name: str, severity: Severity | str, language: str
) -> tuple[timedelta, ClockKind]:
    """The shorter of plan and severity target, on the severity's clock unless the language forbids 24/7."""
    plan, language_rule = policy.plan(plan_name), policy.language(language)
    rule = policy.severities[severity_of(severity)]
    target = min(plan.first_response_target, rule.first_response_target)
    clock = rule.clock
    if clock is ClockKind.ROUND_THE_CLOCK and not language_rule.round_the_clock:
        clock = ClockKind.BUSINESS_HOURS
    return target, clock


def first_response_due(
    policy: Policy,
    calendar: BusinessCalendar,
    plan_name: str,
    severity: Severity | str,
    language: str,
    opened_at: datetime,
) -> datetime:
    """When the first response is due for a ticket opened at `opened_at` (UTC)."""
    target, kind = first_response_target(policy, plan_name, severity, language)
    return clock_for(kind, calendar).add(opened_at, target)


def calendar_for(policy: Policy) -> BusinessCalendar:
    """The business calendar of a policy version, built once and shared (its holiday cache with it)."""
    # Asked for on every deadline: look the spec object up first, and serialise it only when it is new.
    spec = policy.calendar
    known = _by_spec.get(id(spec))
    if known is None or known[0] is not spec:
        known = _by_spec[id(spec)] = (spec, _calendar_of(spec.model_dump_json()))
    return known[1]


# id(spec) -> (spec, calendar); holding the spec keeps its id from being reused. Policies are few.
_by_spec: dict[int, tuple[CalendarSpec, BusinessCalendar]] = {}


# Keyed on the calendar's content, not the version string: two policy files may reuse a version name.
@lru_cache(maxsize=32)
def _calendar_of(spec_json: str) -> BusinessCalendar:
    return BusinessCalendar.from_spec(CalendarSpec.model_validate_json(spec_json))
