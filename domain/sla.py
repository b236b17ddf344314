"""SLA metrics: a target counted on a clock over running stretches, with pauses, due times and at-risk times."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from domain.calendar import Clock
from domain.copying import replaced
from domain.policy import ClockKind

FIRST_RESPONSE = "first_response"


def next_response(number: int) -> str:
    """The name of the n-th next-response metric of a ticket."""
    return f"next_response:{number}"


class MetricState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"
    # The ticket was withdrawn while the metric ran: neither met nor breached.
    CANCELLED = "cancelled"


OPEN_STATES = frozenset({MetricState.RUNNING, MetricState.PAUSED})


# Plain frozen dataclasses, not pydantic models: states are built from validated events, and the intake copies
# them for every event it decides, where a pydantic copy costs several times as much.
@dataclass(frozen=True, slots=True)
class Stretch:
    """A stretch of time during which the metric's clock ran; `end` is None while it still runs."""

    start: datetime
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Metric:
    """One SLA metric of one ticket (first response, or the n-th next response)."""

    name: str
    target: timedelta
    clock: ClockKind
    stretches: tuple[Stretch, ...]
    state: MetricState = MetricState.RUNNING
    due_at: datetime | None = None
    at_risk_at: datetime | None = None
    at_risk_flagged: bool = False
    stopped_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


# Which clock counts a metric of the given kind (the business calendar, or real time).
ClockFor = Callable[[ClockKind], Clock]


def instant_after(stretches: tuple[Stretch, ...], work: timedelta, clock: Clock) -> datetime | None:
    """The instant at which `work` of counted time has passed over the stretches; None if not yet planned.

    Walks the closed stretches first; the open one (if any) runs on without end.
    """
    remaining = work
    for stretch in stretches:
        if stretch.end is None:
            return clock.add(stretch.start, remaining)
        counted = clock.between(stretch.start, stretch.end)
        if remaining <= counted:
            return clock.add(stretch.start, remaining)
        remaining -= counted
    return None


def plan(metric: Metric, clock_for: ClockFor, at_risk_share: Decimal) -> Metric:
    """Recompute due and at-risk times from the stretches; while paused with time left, both are unknown."""
    clock = clock_for(metric.clock)
    at_risk_work = timedelta(minutes=int(metric.target // timedelta(minutes=1) * at_risk_share))
    return replaced(
        metric,
        due_at=instant_after(metric.stretches, metric.target, clock),
        at_risk_at=instant_after(metric.stretches, at_risk_work, clock),
    )


def start(name: str, at: datetime, target: timedelta, clock: ClockKind) -> Metric:
    return Metric(name=name, target=target, clock=clock, stretches=(Stretch(start=at),))


def pause(metric: Metric, at: datetime) -> Metric:
    last = metric.stretches[-1]
    closed = replaced(last, end=max(at, last.start))
    return replaced(metric, stretches=(*metric.stretches[:-1], closed), state=MetricState.PAUSED)


def resume(metric: Metric, at: datetime) -> Metric:
    return replaced(metric, stretches=(*metric.stretches, Stretch(start=at)), state=MetricState.RUNNING)


def retarget(metric: Metric, target: timedelta, clock: ClockKind) -> Metric:
    """A severity change: the same stretches, counted again against the new target on the new clock."""
    return replaced(metric, target=target, clock=clock)


def stop(metric: Metric, at: datetime, state: MetricState) -> Metric:
    return replaced(metric, state=state, stopped_at=at)


def is_overdue(metric: Metric, at: datetime) -> bool:
    """The metric is open and `at` is past its due time: it has breached (paused ones only if due before).

    "Within 2 h" includes the due instant: a reply exactly at the due time meets the target.
    """
    return metric.is_open and metric.due_at is not None and metric.due_at < at
